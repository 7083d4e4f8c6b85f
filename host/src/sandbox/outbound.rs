//! Sending a guest's allowed HTTP request. Its host name is resolved here,
//! addresses of the host's own networks (loopback, private, link-local, cloud
//! metadata and the like) are dropped unless the grant names the address
//! itself (or `localhost`), and the connection goes to exactly an address
//! that was checked, so a name cannot resolve elsewhere between the check and
//! the connect. TLS (web PKI roots) and HTTP/1.1 run over that connection.

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// Without the guest's own request options, how long connecting and the
/// first byte of the answer may take; the guest's time limit bounds it too.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Whether `ip` belongs to the host's own networks rather than the internet:
/// what a guest allowed a public name must not reach by that name.
pub(crate) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_internal_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => is_internal_v4(mapped),
            None => is_internal_v6(ip),
        },
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254.0.0/16, cloud metadata among them
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local
        // NAT64 and 6to4 carry an IPv4 address: judge that.
        || (ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && {
            let [.., high, low] = ip.segments();
            is_internal_v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)))
        })
        || (first == 0x2002 && {
            let [_, high, low, ..] = ip.segments();
            is_internal_v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)))
        })
}

/// Where a request may connect.
pub(crate) enum Reach {
    /// Only public addresses.
    Public,
    /// The grant names this host's address (or `localhost`): any address.
    Named,
}

/// Resolves `host` and connects to the first address `reach` allows.
async fn connect(
    host: &str,
    port: u16,
    reach: Reach,
    timeout: Duration,
) -> Result<TcpStream, Error> {
    let resolved: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| Error::DnsTimeout)?
            .map_err(|_| Error::DestinationNotFound)?
            .collect(),
    };
    let allowed: Vec<SocketAddr> = resolved
        .iter()
        .copied()
        .filter(|address| matches!(reach, Reach::Named) || !is_internal(address.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(if resolved.is_empty() {
            Error::DestinationNotFound
        } else {
            Error::DestinationIpProhibited
        });
    }
    let mut last = Error::ConnectionRefused;
    for address in allowed {
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(error)) => last = Error::Connect(error),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    Err(last)
}

/// Certificates checked against the web PKI's roots, as browsers do.
static TLS: LazyLock<tokio_rustls::TlsConnector> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the default protocol versions are supported")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
});

type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// Sends `request` to `host:port` as `reach` allows, and returns the
/// response and the connection's remaining work.
pub(crate) async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    host: &str,
    port: u16,
    reach: Reach,
) -> Result<Sent, Error> {
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let stream = connect(host, port, reach, connect_timeout).await?;
    let tls = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
    let (mut sender, connection) = if tls {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())?;
        let stream = tokio::time::timeout(connect_timeout, TLS.connect(name, stream))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        handshake(TokioIo::new(stream), connect_timeout).await?
    } else {
        handshake(TokioIo::new(stream), connect_timeout).await?
    };
    // Origin form on the wire: the authority travels in `Host`.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
    let mut connection = connection;
    let sending = tokio::time::timeout(first_byte_timeout, sender.send_request(request));
    let mut sending = std::pin::pin!(sending);
    // The connection does the I/O the response waits for: drive both.
    let response = tokio::select! {
        response = &mut sending => response,
        ended = &mut connection => {
            ended?;
            sending.await
        }
    }
    .map_err(|_| Error::ConnectionReadTimeout)??;
    // The rest of the connection's work (the body) is the caller's to drive,
    // and ends with the guest's request.
    Ok((
        response.map(|body| body.map_err(Error::from).boxed_unsync()),
        Box::new(connection),
    ))
}

type Handshake = (
    hyper::client::conn::http1::SendRequest<WasiBody>,
    std::pin::Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>,
);

async fn handshake<S>(stream: S, timeout: Duration) -> Result<Handshake, Error>
where
    S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = tokio::time::timeout(
        timeout,
        hyper::client::conn::http1::Builder::new().handshake(stream),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    Ok((
        sender,
        Box::pin(async move { connection.await.map_err(Error::from) }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_own_networks_are_internal_and_the_internet_is_not() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a00:1::",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_inside_is_refused_unless_named() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let timeout = Duration::from_secs(5);
        let refused = connect("localhost", port, Reach::Public, timeout).await;
        assert!(
            matches!(refused, Err(Error::DestinationIpProhibited)),
            "{refused:?}"
        );
        let refused = connect("127.0.0.1", port, Reach::Public, timeout).await;
        assert!(
            matches!(refused, Err(Error::DestinationIpProhibited)),
            "{refused:?}"
        );
        assert!(
            connect("127.0.0.1", port, Reach::Named, timeout)
                .await
                .is_ok()
        );
    }
}
