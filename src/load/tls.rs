//! `wss://` for the load generator: a rustls client trusting the CA file given with
//! `--ca-file` (a bench's self-signed certificate, or a proxy's), and the stream that is either
//! plain TCP or TLS.

use std::io;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;

/// How load connections reach a TLS server.
#[derive(Clone)]
pub(super) struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

/// A connection of the load generator: plain TCP (left) or TLS (right).
pub(super) type Stream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

impl Tls {
    /// Trusts the certificates in `ca_file` (PEM) for `host` (a name or an address).
    pub(super) fn new(ca_file: &Path, host: &str) -> Result<Tls, String> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca_file).map_err(|e| e.to_string())?;
        for cert in certs {
            roots
                .add(cert.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    pub(super) async fn wrap(&self, tcp: TcpStream) -> io::Result<Stream> {
        let tls = self.connector.connect(self.name.clone(), tcp).await?;
        Ok(Either::Right(Box::new(tls)))
    }
}
