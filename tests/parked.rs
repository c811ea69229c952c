//! Parked listeners (issue 16): a caught-up listener has no session of its own; the channel
//! writes its frames, pings it and reads its pongs. Everything a listener may do while parked
//! works as with a session, over plain TCP and over the server's own TLS: every line in order,
//! pongs keep it alive, feedback and refusals, a full socket, a silent client reaped with 4002,
//! and the WebSocket closing handshake.
mod common;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::either::Either;

/// A client's socket: plain TCP (left) or TLS (right).
type Stream = Either<TcpStream, Box<TlsStream<TcpStream>>>;
type Ws = WebSocketStream<Stream>;

/// A test server, plain or with its own TLS, and how to reach it.
struct Hall {
    server: TestServer,
    tls: Option<TlsConnector>,
    _certs: Option<tempfile::TempDir>,
}

/// Which transport a test's clients use.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    Plain,
    /// TLS 1.3: the server serves the connection with the keys taken from rustls.
    Tls,
    /// TLS 1.2: the server keeps the rustls connection.
    Tls12,
}

async fn hall(via: Via, ping_interval_secs: u64) -> Hall {
    if via == Via::Plain {
        let server =
            TestServer::start_with(|c| c.limits.ping_interval_secs = ping_interval_secs).await;
        return Hall {
            server,
            tls: None,
            _certs: None,
        };
    }
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let server = TestServer::start_with(|c| {
        c.server.tls_cert = Some(cert);
        c.server.tls_key = Some(key);
        c.limits.ping_interval_secs = ping_interval_secs;
    })
    .await;
    let mut roots = RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let versions: &[&rustls::SupportedProtocolVersion] = match via {
        Via::Tls12 => &[&rustls::version::TLS12],
        _ => &[&rustls::version::TLS13],
    };
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    Hall {
        server,
        tls: Some(TlsConnector::from(Arc::new(config))),
        _certs: Some(certs),
    }
}

impl Hall {
    async fn connect(&self, what: &str, bearer: Option<&str>, rcvbuf: Option<u32>) -> Ws {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(n) = rcvbuf {
            sock.set_recv_buffer_size(n).unwrap();
        }
        let tcp = sock.connect(self.server.addr).await.unwrap();
        let stream = match &self.tls {
            None => Either::Left(tcp),
            Some(c) => {
                let name = ServerName::try_from("localhost").unwrap();
                Either::Right(Box::new(c.connect(name, tcp).await.expect("TLS handshake")))
            }
        };
        let url = format!(
            "ws://localhost:{}{}",
            self.server.addr.port(),
            TestServer::channel_path("en", what)
        );
        let mut req = url.into_client_request().unwrap();
        if let Some(t) = bearer {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::client_async(req, stream)
            .await
            .expect("websocket handshake");
        ws
    }

    async fn listen(&self) -> Ws {
        let mut ws = self.connect("listen", None, None).await;
        assert_eq!(next(&mut ws).await["type"], "hello");
        ws
    }

    async fn publish(&self) -> Ws {
        let mut ws = self.connect("publish", Some(&token("en")), None).await;
        assert_eq!(next(&mut ws).await["type"], "hello");
        ws
    }

    fn parked(&self) -> usize {
        let ch = self.server.server().hub().channel(EVENT, "en").unwrap();
        ch.fanout().direct_count()
    }

    async fn until_parked(&self, n: usize) {
        poll_until("listeners to park", || async {
            (self.parked() == n).then_some(())
        })
        .await;
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next text message (pings are answered by tungstenite while waiting).
async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(RECV_TIMEOUT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("no error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// The next message that is not a status or booth update.
async fn next_event(ws: &mut Ws) -> Value {
    loop {
        let v = next(ws).await;
        if !is_meta(&v) {
            return v;
        }
    }
}

async fn publish_lines(p: &mut Ws, from: u64, to: u64, filler: usize) {
    for n in from..=to {
        let text = format!("Line {n}. {}", "More words. ".repeat(filler));
        send(
            p,
            json!({"type": "final", "text": text, "id": format!("l{n}")}),
        )
        .await;
    }
    for n in from..=to {
        let ack = next_event(p).await;
        assert_eq!(
            (ack["type"].as_str(), ack["seq"].as_u64()),
            (Some("ack"), Some(n))
        );
    }
}

async fn every_line_and_pongs(via: Via) {
    let h = hall(via, 1).await;
    let mut listeners = Vec::new();
    for _ in 0..20 {
        listeners.push(h.listen().await);
    }
    h.until_parked(20).await;
    let mut p = h.publish().await;
    publish_lines(&mut p, 1, 30, 2).await;
    // Reading (and so answering the server's pings, once a second) for three seconds: nobody
    // is reaped, and every line arrives once, in order.
    let mut readers = Vec::new();
    for mut l in listeners {
        readers.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            let until = tokio::time::Instant::now() + Duration::from_secs(3);
            while let Ok(Some(msg)) = tokio::time::timeout_at(until, l.next()).await {
                match msg.expect("no error") {
                    Message::Text(t) => {
                        let v: Value = serde_json::from_str(&t).unwrap();
                        if v["type"] == "line" {
                            seqs.push(v["seq"].as_u64().unwrap());
                        }
                    }
                    Message::Close(c) => panic!("a listener that answers pings was closed: {c:?}"),
                    _ => {}
                }
            }
            (seqs, l)
        }));
    }
    let mut kept = Vec::new();
    for r in readers {
        let (seqs, l) = r.await.unwrap();
        assert_eq!(seqs, (1..=30).collect::<Vec<_>>());
        kept.push(l);
    }
    h.until_parked(20).await;
    let ch = h.server.server().hub().channel(EVENT, "en").unwrap();
    assert_eq!(ch.listeners(), 20, "nobody was reaped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_listeners_get_every_line_and_their_pongs_keep_them() {
    every_line_and_pongs(Via::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_tls_listeners_get_every_line_and_their_pongs_keep_them() {
    every_line_and_pongs(Via::Tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_tls12_listeners_get_every_line_and_their_pongs_keep_them() {
    every_line_and_pongs(Via::Tls12).await;
}

async fn feedback_refusal_and_close(via: Via) {
    let h = hall(via, 30).await;
    let mut l = h.listen().await;
    h.until_parked(1).await;
    send(&mut l, json!({"type": "feedback", "kind": "slower"})).await;
    let ch = h.server.server().hub().channel(EVENT, "en").unwrap();
    poll_until("the booth to count the feedback", || async {
        (ch.booth.feedback_counts().slower == 1).then_some(())
    })
    .await;
    h.until_parked(1).await;
    send(&mut l, json!({"type": "final", "text": "Not a publisher."})).await;
    assert_eq!(next_event(&mut l).await["code"], "not_allowed");
    l.send(Message::Binary(vec![1u8].into())).await.unwrap();
    assert_eq!(next_event(&mut l).await["code"], "binary_not_supported");
    h.until_parked(1).await;
    let mut p = h.publish().await;
    publish_lines(&mut p, 1, 1, 0).await;
    assert_eq!(next_event(&mut l).await["seq"], 1);
    h.until_parked(1).await;
    // The closing handshake: the server answers the client's Close, then the socket ends.
    l.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let reply = loop {
        match tokio::time::timeout(RECV_TIMEOUT, l.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Close(c))) => break c,
            Some(Ok(_)) => {}
            other => panic!("no close reply: {other:?}"),
        }
    };
    assert_eq!(reply.map(|c| c.code), Some(CloseCode::Normal));
    assert!(matches!(
        tokio::time::timeout(RECV_TIMEOUT, l.next())
            .await
            .expect("in time"),
        None | Some(Err(_))
    ));
    poll_until("the listener to leave", || async {
        (ch.listeners() == 0 && h.parked() == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_listener_sends_feedback_is_refused_and_closes_cleanly() {
    feedback_refusal_and_close(Via::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_tls_listener_sends_feedback_is_refused_and_closes_cleanly() {
    feedback_refusal_and_close(Via::Tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_tls12_listener_sends_feedback_is_refused_and_closes_cleanly() {
    feedback_refusal_and_close(Via::Tls12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_tls_listener_is_reaped_and_a_live_one_is_not() {
    let h = hall(Via::Tls, 1).await;
    let mut dead = h.listen().await;
    let mut alive = h.listen().await;
    let reader = tokio::spawn(async move {
        let until = tokio::time::Instant::now() + Duration::from_millis(4500);
        while let Ok(Some(msg)) = tokio::time::timeout_at(until, alive.next()).await {
            if let Ok(Message::Close(c)) = msg {
                panic!("a live listener was closed: {c:?}");
            }
        }
        alive
    });
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let close = loop {
        match tokio::time::timeout(RECV_TIMEOUT, dead.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Close(c))) => break c.expect("a close frame"),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 4002);
    drop(reader.await.unwrap());
}

/// A TLS listener that stops reading fills its socket: the fan-out hands it to a session,
/// which writes what the fan-out could not and catches up, every line once and in order.
async fn full_socket(via: Via) {
    let h = hall(via, 30).await;
    let mut l = h.connect("listen", None, Some(4096)).await;
    assert_eq!(next(&mut l).await["type"], "hello");
    h.until_parked(1).await;
    let mut p = h.publish().await;
    publish_lines(&mut p, 1, 60, 300).await;
    let mut seq = 0;
    while seq < 60 {
        let v = next_event(&mut l).await;
        if v["type"] == "line" {
            seq += 1;
            assert_eq!(v["seq"], seq);
        }
    }
    h.until_parked(1).await;
    publish_lines(&mut p, 61, 61, 0).await;
    assert_eq!(next_event(&mut l).await["seq"], 61);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_tls_socket_is_caught_up_without_a_gap() {
    full_socket(Via::Tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_tls12_socket_is_caught_up_without_a_gap() {
    full_socket(Via::Tls12).await;
}

/// Parked listeners that speak while lines stream: the channel's reader hands each back while
/// a line's pass may be writing to its socket without the socket's lock. Every line arrives
/// once, in order, every feedback counts, and they all park again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_that_speak_while_lines_stream_miss_nothing() {
    const N: usize = 40;
    const LINES: u64 = 120;
    let h = hall(Via::Plain, 30).await;
    let mut listeners = Vec::new();
    for _ in 0..N {
        listeners.push(h.listen().await);
    }
    h.until_parked(N).await;
    let mut p = h.publish().await;
    let mut readers = Vec::new();
    for (k, mut l) in listeners.into_iter().enumerate() {
        readers.push(tokio::spawn(async move {
            // Each speaks after a different line, so hand-backs meet passes at many points.
            let speak_after = 1 + (k as u64 * 7) % (LINES - 1);
            let mut seqs = Vec::new();
            while seqs.last() != Some(&LINES) {
                let v = next(&mut l).await;
                if v["type"] == "line" {
                    let seq = v["seq"].as_u64().unwrap();
                    seqs.push(seq);
                    if seq == speak_after {
                        send(&mut l, json!({"type": "feedback", "kind": "slower"})).await;
                    }
                }
            }
            (seqs, l)
        }));
    }
    for batch in 0..LINES / 10 {
        publish_lines(&mut p, batch * 10 + 1, batch * 10 + 10, 1).await;
    }
    let mut kept = Vec::new();
    for r in readers {
        let (seqs, l) = r.await.unwrap();
        assert_eq!(seqs, (1..=LINES).collect::<Vec<_>>());
        kept.push(l);
    }
    let ch = h.server.server().hub().channel(EVENT, "en").unwrap();
    poll_until("every feedback to count", || async {
        (ch.booth.feedback_counts().slower as usize == N).then_some(())
    })
    .await;
    h.until_parked(N).await;
}
