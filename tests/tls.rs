//! Native TLS from `server.tls_cert`/`tls_key`: HTTPS and WSS with a self-signed certificate
//! made in the test, publish and listen over TLS, and TLS-level hostility (plain HTTP to the
//! TLS port, a silent handshake) costing nothing.
mod common;
use std::sync::Arc;
use std::time::Duration;

use common::raw;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

struct Tls {
    server: TestServer,
    connector: TlsConnector,
    _certs: tempfile::TempDir,
}

async fn start() -> Tls {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let server = TestServer::start_with(|c| {
        c.server.tls_cert = Some(cert);
        c.server.tls_key = Some(key);
        c.limits.handshake_timeout_secs = 1;
    })
    .await;
    let mut roots = RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    Tls {
        server,
        connector: TlsConnector::from(Arc::new(config)),
        _certs: certs,
    }
}

impl Tls {
    async fn connect(&self) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.server.addr).await.unwrap();
        self.connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake")
    }

    async fn ws(
        &self,
        channel: &str,
        what: &str,
        bearer: Option<&str>,
    ) -> WebSocketStream<TlsStream<TcpStream>> {
        let url = format!(
            "wss://localhost:{}{}",
            self.server.addr.port(),
            TestServer::channel_path(channel, what)
        );
        let mut req = url.into_client_request().unwrap();
        if let Some(t) = bearer {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::client_async(req, self.connect().await)
            .await
            .expect("wss handshake");
        ws
    }
}

async fn next_of(ws: &mut WebSocketStream<TlsStream<TcpStream>>, ty: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(RECV_TIMEOUT, ws.next())
            .await
            .expect("message in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == ty {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captions_flow_over_wss_and_pages_over_https() {
    let t = start().await;
    assert!(t.server.server().public_url().starts_with("https://"));
    let mut l = t.ws("en", "listen", None).await;
    let mut p = t.ws("en", "publish", Some(&token("en"))).await;
    p.send(Message::Text(
        json!({"type": "final", "text": "Encrypted, end to end of the hop.", "id": "t1"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    assert_eq!(next_of(&mut p, "ack").await["seq"], 1);
    assert_eq!(
        next_of(&mut l, "line").await["text"],
        "Encrypted, end to end of the hop."
    );

    let mut https = t.connect().await;
    https
        .write_all(b"GET /e/conf HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(RECV_TIMEOUT, https.read_to_end(&mut buf)).await;
    let r = raw::parse_response(&buf);
    assert_eq!(r.status, 200);
    assert!(r.header("content-security-policy").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_and_silent_clients_on_the_tls_port_cost_nothing() {
    let t = start().await;
    // Plain HTTP to the TLS port: the handshake fails, the socket is closed.
    let mut plain = TcpStream::connect(t.server.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    raw::wait_closed(&mut plain, Duration::from_secs(5)).await;
    // A client that opens TCP and never starts the handshake is dropped after
    // limits.handshake_timeout_secs.
    let mut silent = TcpStream::connect(t.server.addr).await.unwrap();
    let took = raw::wait_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(4), "{took:?}");
    // And the server still serves TLS clients.
    let mut l = t.ws("en", "listen", None).await;
    l.close(None).await.ok();
}

#[tokio::test]
async fn a_missing_or_bad_certificate_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    for (cert, key) in [
        (dir.path().join("missing.pem"), bad.clone()),
        (bad.clone(), bad.clone()),
    ] {
        let mut config = babelcast::Config::parse(
            &config_toml(&dir.path().join("data")),
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        config.server.tls_cert = Some(cert);
        config.server.tls_key = Some(key);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = babelcast::Server::start(listener, config, Default::default())
            .await
            .expect_err("must not start");
        let msg = err.to_string();
        assert!(msg.contains("server.tls_cert"), "{msg}");
    }
}
