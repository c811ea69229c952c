//! Native TLS: loads `server.tls_cert` / `server.tls_key` (PEM) into a rustls acceptor.
//! For deployments without a reverse proxy; docs/deploy.md has the proxy recipes otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls_cert {path}: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("server.tls_key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("server.tls_cert/tls_key: {0}")]
    Config(#[from] rustls::Error),
}

/// The TLS side of the accept loop.
#[derive(Clone)]
pub struct Acceptor(pub TlsAcceptor);

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Acceptor(rustls)")
    }
}

/// A TLS acceptor for the certificate chain and key in these PEM files. ALPN offers
/// `http/1.1` only (the server speaks HTTP/1.1 and WebSocket over it).
pub fn acceptor(cert: &Path, key: &Path) -> Result<Acceptor, TlsError> {
    let cert_err = |message: String| TlsError::Cert {
        path: cert.to_owned(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no CERTIFICATE block found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // After a listener's upgrade its TLS 1.3 keys move to the socket (channel::Tls): the
    // fan-out encrypts for it without rustls's per-connection buffers.
    config.enable_secret_extraction = true;
    Ok(Acceptor(TlsAcceptor::from(Arc::new(config))))
}
