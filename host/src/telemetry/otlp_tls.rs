//! TLS for the OTLP exporters beyond the system's roots: a collector's own
//! certificate authority, and a client certificate for mutual TLS, named by
//! `OTEL_EXPORTER_OTLP_{CERTIFICATE,CLIENT_CERTIFICATE,CLIENT_KEY}` or a
//! signal's own forms of them. The files are read and checked when the host
//! starts, so a wrong path or a key that is not PEM stops it there.

use super::config::signal_setting;
use crate::files::{MAX_SETTINGS_FILE, read_text_bounded};
use std::path::Path;

/// What an exporter trusts and presents, besides the system's roots.
#[derive(Clone, Default, PartialEq, Eq)]
pub(super) struct OtlpTls {
    /// PEM certificates trusted as well as the system's roots.
    authority: Option<String>,
    /// PEM certificate chain and private key shown to the collector.
    client: Option<(String, String)>,
}

/// Says what is set, never the private key.
impl std::fmt::Debug for OtlpTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpTls")
            .field("authority", &self.authority.is_some())
            .field("client_certificate", &self.client.is_some())
            .finish()
    }
}

impl OtlpTls {
    /// Read for `signal` (`TRACES`, `METRICS`, `LOGS`) from the variables `var` reads.
    pub fn resolve(signal: &str, var: &impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let read = |setting: &str| -> Result<Option<(String, String)>, String> {
            let Some((name, path)) = signal_setting(signal, setting, var) else {
                return Ok(None);
            };
            let text = read_text_bounded(Path::new(path.trim()), MAX_SETTINGS_FILE)
                .map_err(|e| format!("{name}: cannot read {}: {e}", path.trim()))?;
            Ok(Some((name, text)))
        };
        let authority = match read("CERTIFICATE")? {
            Some((name, pem)) => match reqwest::Certificate::from_pem_bundle(pem.as_bytes()) {
                Ok(certificates) if !certificates.is_empty() => Some(pem),
                _ => return Err(format!("{name}: no PEM certificate in it")),
            },
            None => None,
        };
        let client = match (read("CLIENT_CERTIFICATE")?, read("CLIENT_KEY")?) {
            (Some((name, chain)), Some((_, key))) => {
                reqwest::Identity::from_pem(format!("{chain}\n{key}").as_bytes()).map_err(|e| {
                    format!("{name} and its key cannot be a TLS client identity: {e}")
                })?;
                Some((chain, key))
            }
            (None, None) => None,
            (Some((name, _)), None) | (None, Some((name, _))) => {
                return Err(format!(
                    "{name} is set without its pair: mutual TLS needs both \
                     OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY"
                ));
            }
        };
        Ok(OtlpTls { authority, client })
    }

    /// Nothing beyond the system's roots.
    pub fn is_default(&self) -> bool {
        self.authority.is_none() && self.client.is_none()
    }

    /// For a gRPC channel.
    pub fn tonic(&self) -> tonic::transport::ClientTlsConfig {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut config = ClientTlsConfig::new().with_enabled_roots();
        if let Some(pem) = &self.authority {
            config = config.ca_certificate(Certificate::from_pem(pem));
        }
        if let Some((chain, key)) = &self.client {
            config = config.identity(Identity::from_pem(chain, key));
        }
        config
    }

    /// For an HTTP client: the certificates to trust and the identity to show.
    /// Both were checked when read.
    pub fn reqwest(&self) -> (Vec<reqwest::Certificate>, Option<reqwest::Identity>) {
        let authority = self
            .authority
            .as_deref()
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(pem.as_bytes()).ok())
            .unwrap_or_default();
        let identity = self.client.as_ref().and_then(|(chain, key)| {
            reqwest::Identity::from_pem(format!("{chain}\n{key}").as_bytes()).ok()
        });
        (authority, identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::config::listed;

    fn resolve(signal: &str, vars: &[(&str, &str)]) -> Result<OtlpTls, String> {
        OtlpTls::resolve(signal, &listed(vars))
    }

    #[test]
    fn nothing_set_is_the_system_roots_alone() {
        assert!(resolve("TRACES", &[]).unwrap().is_default());
    }

    #[test]
    fn debug_output_never_holds_the_key() {
        let tls = OtlpTls {
            authority: None,
            client: Some(("a chain".into(), "a secret key".into())),
        };
        let shown = format!("{tls:?}");
        assert!(!shown.contains("secret") && shown.contains("client_certificate: true"));
    }

    #[test]
    fn files_that_cannot_serve_are_refused_naming_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("notes.txt");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let not_pem = not_pem.to_str().unwrap();
        assert_eq!(
            resolve(
                "METRICS",
                &[("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", not_pem)]
            ),
            Err("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE: no PEM certificate in it".into())
        );
        let error = resolve(
            "LOGS",
            &[
                ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", not_pem),
                ("OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY", not_pem),
            ],
        )
        .unwrap_err();
        assert!(
            error.starts_with(
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and its key cannot be a TLS client identity"
            ),
            "{error}"
        );
        let missing = dir.path().join("missing.pem");
        let error = resolve(
            "TRACES",
            &[("OTEL_EXPORTER_OTLP_CERTIFICATE", missing.to_str().unwrap())],
        )
        .unwrap_err();
        assert!(
            error.starts_with(&format!(
                "OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read {}",
                missing.display()
            )),
            "{error}"
        );
    }
}
