//! TLS for `glassbox serve`: a rustls server configuration from PEM
//! certificate and key files, offering HTTP/2 and HTTP/1.1.

use crate::files::{MAX_SETTINGS_FILE, read_text_bounded};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate or key that cannot serve TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no PEM certificate in it (`-----BEGIN CERTIFICATE-----`)", .0.display())]
    NoCertificate(PathBuf),
    #[error("{}: {reason}", .path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("the certificate and key cannot serve TLS: {0}")]
    Config(rustls::Error),
}

/// The server configuration for the certificate chain in `certificate` and
/// the private key in `key`, both PEM.
pub fn server_config(
    certificate: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let read = |path: &Path| {
        read_text_bounded(path, MAX_SETTINGS_FILE).map_err(|source| TlsError::Read {
            path: path.into(),
            source,
        })
    };
    let invalid = |path: &Path| {
        let path = path.to_path_buf();
        move |error: rustls::pki_types::pem::Error| TlsError::Invalid {
            path,
            reason: error.to_string(),
        }
    };
    let chain = CertificateDer::pem_slice_iter(read(certificate)?.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid(certificate))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(certificate.into()));
    }
    let key = PrivateKeyDer::from_pem_slice(read(key)?.as_bytes()).map_err(invalid(key))?;
    // The provider named, not the process default, which is ambiguous when
    // dependencies enable more than one.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
