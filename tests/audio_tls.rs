//! Sound over native TLS (`server.tls_cert`): TLS listeners take the direct path too (issue
//! 16), each packet sealed for the connection as the channel writes it, parked or not. They
//! arrive in order; a listener that stops reading skips to current sound.

mod common;
#[path = "common/sound.rs"]
mod sound;

use std::sync::Arc;
use std::time::{Duration, Instant};

use babelcast::protocol::audio::AudioHeader;
use common::*;
use futures_util::{SinkExt, StreamExt};
use sound::*;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// A TLS server with a self-signed certificate, and a connector that trusts it.
async fn start() -> (TestServer, TlsConnector, tempfile::TempDir) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let server = TestServer::start_with(|c| {
        c.server.tls_cert = Some(cert);
        c.server.tls_key = Some(key);
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
    (server, TlsConnector::from(Arc::new(config)), certs)
}

/// A wss listener asking for sound; `rcvbuf`: a small receive buffer (a slow phone).
async fn listen(s: &TestServer, tls: &TlsConnector, rcvbuf: Option<u32>) -> Wss {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(n) = rcvbuf {
        socket.set_recv_buffer_size(n).unwrap();
    }
    let tcp = socket.connect(s.addr).await.unwrap();
    let stream = tls
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    let url = format!(
        "wss://localhost:{}{}?audio=1",
        s.addr.port(),
        TestServer::channel_path("en", "listen")
    );
    let (ws, _) = tokio_tungstenite::client_async(url.into_client_request().unwrap(), stream)
        .await
        .expect("wss handshake");
    ws
}

/// The next sound packet's header and (tag, n), skipping text; `None` if none came `within`.
async fn packet(ws: &mut Wss, within: Duration) -> Option<(AudioHeader, (u8, u32))> {
    loop {
        let msg = tokio::time::timeout(within, ws.next()).await.ok()??.ok()?;
        if let Message::Binary(b) = msg {
            let (h, opus) = AudioHeader::decode(&b).expect("a listener frame");
            return Some((h, packet_id(opus)));
        }
    }
}

/// Sends packet `n` of Ana's as a publisher's binary frame.
async fn send(ws: &mut Wss, n: u32) {
    let frame = [vec![1u8], opus_packet(b'A', n)].concat();
    ws.send(Message::Binary(frame.into())).await.expect("send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listeners_get_the_sound_written_directly_and_skip_when_behind() {
    let (s, tls, _certs) = start().await;
    let mut fast = listen(&s, &tls, None).await;
    let mut slow = listen(&s, &tls, Some(4096)).await;
    let ch = s.server().hub().channel(EVENT, "en").unwrap();
    poll_until("both TLS listeners parked, with sound", || async {
        (ch.fanout().direct_count() == 2 && ch.audio().direct_count() == 2).then_some(())
    })
    .await;
    // The publisher speaks plain WebSocket over TLS too.
    let url = format!(
        "wss://localhost:{}{}?name=Ana",
        s.addr.port(),
        TestServer::channel_path("en", "publish")
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token("en")).parse().unwrap(),
    );
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let stream = tls
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut ana, _) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    // Real time: 20 ms packets for 4 s; the slow listener reads nothing meanwhile.
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let started = Instant::now();
    let mut sent = 0u32;
    while started.elapsed() < Duration::from_secs(4) {
        tick.tick().await;
        send(&mut ana, sent).await;
        sent += 1;
        let (_, id) = packet(&mut fast, RECV_TIMEOUT).await.expect("a packet");
        assert_eq!(id, (b'A', sent - 1), "in order, every packet");
    }
    let resumed = sent;
    let mut got = Vec::new();
    loop {
        tick.tick().await;
        send(&mut ana, sent).await;
        sent += 1;
        while let Some((_, (_, n))) = packet(&mut slow, Duration::from_millis(1)).await {
            got.push(n);
        }
        if got.last().is_some_and(|&n| n + 2 >= sent) {
            break;
        }
        assert!(
            sent - resumed < 500,
            "the slow listener never caught up: {got:?}"
        );
    }
    let of_stall = got.iter().filter(|&&n| n < resumed).count() as u32;
    assert!(
        of_stall < resumed / 2,
        "{of_stall} of the {resumed} packets sent while it did not read arrived late"
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
}
