//! The forwarders' HTTP client: hyper-util's pooled client over HTTP/1.1, plain or over TLS
//! (rustls with the ring provider, via hyper-rustls), with a deadline per request and a
//! bounded answer body. HTTPS servers are verified against the Mozilla roots (webpki-roots)
//! plus the extra CA certificates of `server.forward_ca_file`, if any.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Method, Request, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::config::load_ca_file;

/// Time to open a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer body read (Zoom and YouTube answer a timestamp or a seq).
const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// Idle pooled connections are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// What the remote answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("invalid URL: {0}")]
    Url(String),
    #[error("{0}")]
    Http(String),
}

/// A cheap-to-clone pooled HTTP and HTTPS client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client for `http://` and `https://` URLs trusting the Mozilla roots.
    pub fn new() -> HttpClient {
        Self::with_extra_roots(Vec::new())
            .expect("the Mozilla roots and ring's default protocol versions are valid")
    }

    /// Like [`new`](Self::new), also trusting `extra` (the CA certificates of
    /// `server.forward_ca_file`: a TLS-inspecting proxy's, a private CA's).
    pub fn with_extra_roots(extra: Vec<CertificateDer<'static>>) -> Result<HttpClient, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in extra {
            roots
                .add(cert)
                .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        // The HTTPS connector checks the scheme; the TCP connector below it must let https pass.
        connector.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        Ok(HttpClient { inner })
    }

    /// A client trusting the Mozilla roots and the CA certificates in the PEM file `ca_file`
    /// (`server.forward_ca_file`), when given.
    pub fn with_ca_file(ca_file: Option<&Path>) -> Result<HttpClient, String> {
        match ca_file {
            None => Ok(Self::new()),
            Some(path) => Self::with_extra_roots(load_ca_file(path)?),
        }
    }

    /// Sends one request (a `text/plain; charset=utf-8` body when given) and reads the answer,
    /// all within `timeout`.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<String>,
        timeout: Duration,
    ) -> Result<Answer, SendError> {
        let uri: Uri = url.parse().map_err(|e| SendError::Url(format!("{e}")))?;
        let mut req = Request::builder().method(method).uri(uri).header(
            header::USER_AGENT,
            concat!("babelcast/", env!("CARGO_PKG_VERSION")),
        );
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| SendError::Url(e.to_string()))?;
        let exchange = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| SendError::Http(error_chain(&e)))?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| SendError::Http(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok(Answer {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(SendError::Timeout(timeout)))
    }
}

/// An error with its causes ("client error (Connect): tcp connect error: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
