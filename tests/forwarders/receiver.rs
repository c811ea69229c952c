//! The forwarders' counterpart: a caption service on 127.0.0.1:0 (Zoom- and YouTube-shaped)
//! that records every request exactly, answers `…/seq`, fails or refuses on demand, and serves
//! over HTTPS with a certificate a test CA signed.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Notify;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// One request a receiver saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, exactly as sent.
    pub target: String,
    pub content_type: String,
    pub body: String,
    /// The status the receiver answered.
    pub status: u16,
}

/// A caption service on 127.0.0.1:0: answers GET …/seq with its last accepted seq, fails the
/// first `fail_first` posts with 503 (and every post while `down`), refuses bodies containing
/// `REFUSE` with 400, and accepts the rest with a timestamp.
#[derive(Clone, Default)]
pub struct Receiver {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub notify: Arc<Notify>,
    pub fail_first: Arc<AtomicUsize>,
    pub down: Arc<AtomicBool>,
    pub seq: Arc<AtomicU64>,
    /// HTTPS receivers: TLS handshakes that failed (the client refused the certificate).
    pub handshake_failures: Arc<AtomicUsize>,
}

async fn handle(State(r): State<Receiver>, req: Request) -> axum::response::Response {
    let method = req.method().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let (status, answer) = if method == "GET" && req_path(&target).ends_with("/seq") {
        (200, r.seq.load(Ordering::SeqCst).to_string())
    } else if r.down.load(Ordering::SeqCst)
        || r.fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        (503, "unavailable".to_string())
    } else if body.contains("REFUSE") {
        (400, "Bad request".to_string())
    } else {
        if let Some(seq) = query_value(&target, "seq").and_then(|s| s.parse().ok()) {
            r.seq.store(seq, Ordering::SeqCst);
        }
        (200, "2024-05-01T09:30:00.000".to_string())
    };
    r.seen.lock().unwrap().push(Seen {
        method,
        target,
        content_type,
        body,
        status,
    });
    r.notify.notify_waiters();
    (StatusCode::from_u16(status).unwrap(), answer).into_response()
}

pub fn req_path(target: &str) -> &str {
    target.split('?').next().unwrap_or("")
}

pub fn query_value<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    target
        .split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

impl Receiver {
    pub async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let app = axum::Router::new().fallback(handle).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, base)
    }

    /// Like [`start`](Self::start), over HTTPS: the certificate (for localhost and
    /// 127.0.0.1) is signed by a CA made here, whose PEM is returned with the base URL.
    pub async fn start_https() -> (Receiver, String, String) {
        let r = Receiver::default();
        let app = axum::Router::new().fallback(handle).with_state(r.clone());
        let (ca_pem, tls) = test_ca_and_server_config();
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let rx = r.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, app, rx) = (acceptor.clone(), app.clone(), rx.clone());
                tokio::spawn(async move {
                    match acceptor.accept(tcp).await {
                        Ok(tls) => {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                                .await;
                        }
                        Err(_) => {
                            rx.handshake_failures.fetch_add(1, Ordering::SeqCst);
                            rx.notify.notify_waiters();
                        }
                    }
                });
            }
        });
        (r, base, ca_pem)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `n` posts were accepted; returns every request seen.
    pub async fn accepted(&self, n: usize) -> Vec<Seen> {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let notified = self.notify.notified();
                let seen = self.seen();
                if seen
                    .iter()
                    .filter(|s| s.method == "POST" && s.status == 200)
                    .count()
                    >= n
                {
                    return seen;
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("receiver did not get {n} posts: {:#?}", self.seen()))
    }

    /// Waits until at least `n` requests of any kind were seen.
    pub async fn requests(&self, n: usize) -> Vec<Seen> {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let notified = self.notify.notified();
                let seen = self.seen();
                if seen.len() >= n {
                    return seen;
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("receiver did not get {n} requests: {:#?}", self.seen()))
    }
}

/// A CA (its PEM) and a rustls server config with a certificate for localhost and 127.0.0.1
/// that the CA signed.
pub fn test_ca_and_server_config() -> (String, ServerConfig) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "babelcast test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    (ca.pem(), config)
}
