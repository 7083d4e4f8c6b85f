//! Outbound HTTP from guests (`wasi:http`): the host allow-list, and a CLIENT
//! span with HTTP semantic-convention attributes around every request, whose
//! W3C `traceparent` goes out with it. A request to a host not on the list
//! never leaves the host: the guest gets `HTTP-request-denied` and the span
//! records `error.type = sandbox_denied` with the host it tried. An allowed
//! name reaches only public addresses ([`super::outbound`]).

use super::Policy;
use super::outbound::{self, Reach};
use crate::telemetry::{Telemetry, semconv};
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

/// One entry of an outbound allow-list: `host`, `*.suffix`, optionally with a
/// scheme (`https://host`) and a port (`host:8443`). Without a scheme, http
/// and https are allowed; without a port, any port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Option<String>,
    /// A host name or IP address, or a suffix such as `.example.com` for `*.example.com`.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

/// Why a host pattern cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{pattern}` is not a host pattern: {reason} (expected `host`, `*.domain`, `host:port` or `https://host`)"
)]
pub struct HostPatternError {
    pattern: String,
    reason: &'static str,
}

impl FromStr for HostPattern {
    type Err = HostPatternError;

    fn from_str(pattern: &str) -> Result<Self, Self::Err> {
        let fail = |reason| HostPatternError {
            pattern: pattern.to_owned(),
            reason,
        };
        let text = pattern.trim().to_ascii_lowercase();
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme @ ("http" | "https"), rest)) => (Some(scheme.to_owned()), rest),
            Some(_) => return Err(fail("the scheme must be http or https")),
            None => (None, text.as_str()),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '@', '?', '#']) {
            return Err(fail("only a host is allowed, without path or credentials"));
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (address, after) = bracketed
                .split_once(']')
                .ok_or_else(|| fail("an IPv6 address needs a closing `]`"))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| fail("junk after `]`"))?,
                ),
            };
            (address, port)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| fail("the port is not a number"))
            })
            .transpose()?;
        let (host, wildcard) = match host.strip_prefix('*') {
            Some(suffix) if suffix.starts_with('.') && suffix.len() > 1 => (suffix, true),
            Some(_) => return Err(fail("a wildcard must be `*.` followed by a domain")),
            None => (host, false),
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'))
        {
            return Err(fail(
                "the host is empty or has characters hosts cannot have",
            ));
        }
        Ok(HostPattern {
            scheme,
            host: host.to_owned(),
            wildcard,
            port,
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scheme) = &self.scheme {
            write!(f, "{scheme}://")?;
        }
        if self.wildcard {
            f.write_str("*")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl HostPattern {
    /// Whether a request to `scheme://host:port` matches. `host` is lower case.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host_matches = if self.wildcard {
            host.ends_with(&self.host)
        } else {
            host == self.host
        };
        host_matches
            && self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.port.is_none_or(|p| p == port)
    }

    /// Whether this pattern names `host` itself, not by a wildcard: then an
    /// address or `localhost` in it is meant, internal or not.
    fn names(&self, host: &str) -> bool {
        !self.wildcard && self.host == host
    }
}

/// A header the host adds to requests to hosts matching `host`, after the
/// allow-list check: a secret (an API key) the guest needs sent but never sees.
/// Whatever the guest set under the same name is replaced.
#[derive(Clone)]
pub struct HttpCredential {
    pub host: HostPattern,
    pub header: http::HeaderName,
    /// Marked sensitive, so HTTP libraries keep it out of their logs.
    pub value: http::HeaderValue,
}

impl fmt::Debug for HttpCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HttpCredential({}: REDACTED for {})",
            self.header, self.host
        )
    }
}

/// The `wasi:http` hooks of one store: checks each request against the
/// component's allow-list, traces it and forwards it.
pub(crate) struct HttpGate {
    component: Arc<str>,
    policy: Arc<Policy>,
    /// `None` while loading: nothing is sent then.
    telemetry: Option<Arc<Telemetry>>,
    /// Where request spans attach; kept current by the store.
    pub(crate) parent: Context,
}

impl HttpGate {
    pub fn new(
        component: Arc<str>,
        policy: Arc<Policy>,
        telemetry: Option<Arc<Telemetry>>,
    ) -> Self {
        HttpGate {
            component,
            policy,
            telemetry,
            parent: Context::new(),
        }
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> ResponseFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_owned();
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        let method = request.method().as_str().to_owned();
        let Some(telemetry) = self.telemetry.clone() else {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        };
        let attributes = vec![
            KeyValue::new(semconv::HTTP_REQUEST_METHOD, method.clone()),
            KeyValue::new(semconv::URL_FULL, redacted_url(request.uri())),
            KeyValue::new(semconv::SERVER_ADDRESS, host.clone()),
            KeyValue::new(semconv::SERVER_PORT, i64::from(port)),
            KeyValue::new(semconv::GLASSBOX_COMPONENT, self.component.to_string()),
        ];
        let mut span = telemetry.start_span(method, SpanKind::Client, attributes, &self.parent);

        let matching = || {
            self.policy
                .hosts
                .iter()
                .filter(|p| p.matches(&scheme, &host, port))
        };
        if matching().next().is_none() {
            let reason = format!(
                "{scheme}://{host}:{port} is not on the allow-list of {}",
                self.component
            );
            tracing::warn!("[{}] denied: HTTP request to {reason}", self.component);
            span.fail(semconv::error_type::SANDBOX_DENIED, reason);
            span.finish();
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }

        // The callee joins the trace (and its baggage), under this request's
        // span; the guest cannot forge its own parent.
        crate::telemetry::propagation::inject(span.context(), request.headers_mut());
        for credential in &self.policy.credentials {
            if credential.host.matches(&scheme, &host, port) {
                request
                    .headers_mut()
                    .insert(credential.header.clone(), credential.value.clone());
                span.span().set_attribute(KeyValue::new(
                    semconv::GLASSBOX_HTTP_CREDENTIAL,
                    credential.header.to_string(),
                ));
            }
        }
        let by_address = host.parse::<std::net::IpAddr>().is_ok() || host == "localhost";
        let reach = if by_address && matching().any(|p| p.names(&host)) {
            Reach::Named
        } else {
            Reach::Public
        };
        let component = self.component.clone();
        Box::new(async move {
            match outbound::send(request, options, &host, port, reach).await {
                Ok((response, connection)) => {
                    let status = response.status();
                    span.span().set_attribute(KeyValue::new(
                        semconv::HTTP_RESPONSE_STATUS_CODE,
                        i64::from(status.as_u16()),
                    ));
                    if status.is_client_error() || status.is_server_error() {
                        span.fail(status.as_str().to_owned(), format!("HTTP {status}"));
                    }
                    span.finish();
                    Ok((response, connection))
                }
                Err(wasmtime_wasi_http::Error::DestinationIpProhibited) => {
                    let reason = format!(
                        "{host} resolves only to addresses of this host's own networks (loopback, private, link-local); allow_hosts must name the address itself to reach one"
                    );
                    tracing::warn!("[{component}] denied: HTTP request: {reason}");
                    span.fail(semconv::error_type::SANDBOX_DENIED, reason);
                    span.finish();
                    Err(wasmtime_wasi_http::Error::DestinationIpProhibited)
                }
                Err(error) => {
                    span.fail(semconv::error_type::HTTP_CONNECTION, error.to_string());
                    span.finish();
                    Err(error)
                }
            }
        })
    }
}

/// The URL for `url.full`: without credentials, and with query values
/// redacted, since they often carry keys.
fn redacted_url(uri: &http::Uri) -> String {
    let mut url = format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("https"),
        uri.host().unwrap_or_default(),
        uri.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    url.push_str(uri.path());
    if let Some(query) = uri.query() {
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) => format!("{key}=REDACTED"),
                None => pair.to_owned(),
            })
            .collect();
        url.push('?');
        url.push_str(&redacted.join("&"));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> HostPattern {
        text.parse().unwrap()
    }

    #[test]
    fn patterns_match_host_suffix_scheme_and_port() {
        assert!(pattern("api.example.com").matches("https", "api.example.com", 443));
        assert!(pattern("api.example.com").matches("http", "api.example.com", 8080));
        assert!(!pattern("api.example.com").matches("https", "example.com", 443));
        assert!(!pattern("api.example.com").matches("https", "api.example.com.evil.org", 443));

        assert!(pattern("*.example.com").matches("https", "a.b.example.com", 443));
        assert!(!pattern("*.example.com").matches("https", "example.com", 443));
        assert!(!pattern("*.example.com").matches("https", "badexample.com", 443));

        assert!(pattern("https://API.example.com").matches("https", "api.example.com", 443));
        assert!(!pattern("https://api.example.com").matches("http", "api.example.com", 80));
        assert!(pattern("127.0.0.1:8080").matches("http", "127.0.0.1", 8080));
        assert!(!pattern("127.0.0.1:8080").matches("http", "127.0.0.1", 8081));
        assert!(pattern("[::1]:80").matches("http", "::1", 80));
        assert_eq!(pattern("http://[::1]:80/").to_string(), "http://[::1]:80");
        assert_eq!(pattern("*.Example.com").to_string(), "*.example.com");
    }

    #[test]
    fn bad_patterns_say_why() {
        for (text, reason) in [
            ("ftp://x.org", "the scheme must be http or https"),
            (
                "x.org/path",
                "only a host is allowed, without path or credentials",
            ),
            (
                "user@x.org",
                "only a host is allowed, without path or credentials",
            ),
            ("*", "a wildcard must be `*.` followed by a domain"),
            ("*x.org", "a wildcard must be `*.` followed by a domain"),
            ("x.org:http", "the port is not a number"),
            ("", "the host is empty or has characters hosts cannot have"),
            (
                "x y",
                "the host is empty or has characters hosts cannot have",
            ),
        ] {
            assert_eq!(
                text.parse::<HostPattern>().unwrap_err().reason,
                reason,
                "{text}"
            );
        }
    }

    #[test]
    fn urls_lose_credentials_and_query_values() {
        let uri: http::Uri = "https://user:pw@api.example.com:8443/v1/x?key=sk-123&flag"
            .parse()
            .unwrap();
        assert_eq!(
            redacted_url(&uri),
            "https://api.example.com:8443/v1/x?key=REDACTED&flag"
        );
    }
}
