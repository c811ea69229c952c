//! `babelcast push` against a real server: partials and finals from a text stream, a server
//! restart in the middle, and acks lost on the way (the resent lines are acked as duplicates),
//! with every line stored exactly once.
mod common;
use common::*;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use babelcast::push::{self, PushError, PushOptions, PushReport};
use babelcast::record::Kind;
use babelcast::{Config, Options, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A server on `addr` (port 0 for any) over the store in `dir`.
async fn server_at(dir: &Path, addr: SocketAddr) -> Server {
    let config = Config::parse(&config_toml(dir), Path::new("test.toml")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let listener = loop {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        match socket.bind(addr).and_then(|()| socket.listen(1024)) {
            Ok(l) => break l,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("rebinding {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot bind {addr}: {e}"),
        }
    };
    Server::start(listener, config, Options::default())
        .await
        .unwrap()
}

fn publish_url(addr: SocketAddr, channel: &str) -> String {
    format!(
        "ws://{addr}{}",
        TestServer::channel_path(channel, "publish")
    )
}

fn spawn_push(opts: PushOptions, input: DuplexStream) -> JoinHandle<Result<PushReport, PushError>> {
    tokio::spawn(push::run(opts, input, CancellationToken::new()))
}

async fn listen(addr: SocketAddr, channel: &str, since: u64) -> WsClient {
    let url = format!(
        "ws://{addr}{}?since={since}",
        TestServer::channel_path(channel, "listen")
    );
    WsClient::connect(&url, None).await
}

/// Every stored line of a channel, in seq order.
async fn stored(server: &Server, channel: &'static str) -> Vec<(u64, String)> {
    let hub = server.hub().clone();
    let upto = hub.channel(EVENT, channel).unwrap().last_seq();
    tokio::task::spawn_blocking(move || hub.store.range(EVENT, channel, 0, upto))
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == Kind::Line)
        .map(|r| (r.seq, r.text))
        .collect()
}

async fn next_line(l: &mut WsClient) -> serde_json::Value {
    loop {
        let v = l.recv_event().await;
        if v["type"] == "line" {
            return v;
        }
    }
}

async fn finish(push: JoinHandle<Result<PushReport, PushError>>) -> PushReport {
    tokio::time::timeout(Duration::from_secs(30), push)
        .await
        .expect("push did not finish")
        .unwrap()
        .expect("push failed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_survives_a_server_restart_without_losing_or_doubling_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_at(tmp.path(), "127.0.0.1:0".parse().unwrap()).await;
    let addr = server.local_addr();
    let mut l = listen(addr, "en", 0).await;

    let (mut w, r) = tokio::io::duplex(4096);
    let mut opts = PushOptions::new(publish_url(addr, "en"), token("en"));
    opts.id_prefix = "restart-test".into();
    let push = spawn_push(opts, r);

    // Text as it arrives: a partial, then a final at the line break (a typo corrected).
    w.write_all(b"Good mornig\x08ng, delegates.\nThe agen")
        .await
        .unwrap();
    let line = next_line(&mut l).await;
    assert_eq!(
        (line["seq"].as_u64(), line["text"].as_str()),
        (Some(1), Some("Good morning, delegates."))
    );
    loop {
        let v = l.recv_event().await;
        if v["type"] == "partial" && v["text"] == "The agen" {
            break;
        }
    }

    // The server restarts; the captioner keeps typing meanwhile.
    server.shutdown().await;
    w.write_all(b"da has three items.\nFirst, trade.\n")
        .await
        .unwrap();
    let server = server_at(tmp.path(), addr).await;
    let mut l = listen(addr, "en", 1).await;
    assert_eq!(
        next_line(&mut l).await["text"],
        "The agenda has three items."
    );
    assert_eq!(next_line(&mut l).await["text"], "First, trade.");

    // The input ends without a line break: that text is a line too.
    w.write_all(b"Second, climate.").await.unwrap();
    drop(w);
    let report = finish(push).await;
    assert_eq!(report.lines, 4);
    assert_eq!(report.acked, 4);
    assert_eq!(report.connections, 2);
    assert_eq!(
        stored(&server, "en").await,
        [
            (1, "Good morning, delegates.".to_string()),
            (2, "The agenda has three items.".to_string()),
            (3, "First, trade.".to_string()),
            (4, "Second, climate.".to_string()),
        ]
    );
    server.shutdown().await;
}

/// A TCP proxy that can swallow everything the server sends and cut the connection.
struct Proxy {
    addr: SocketAddr,
    swallow: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let swallow = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(Notify::new());
        let (sw, c) = (swallow.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(upstream).await.unwrap();
                let (sw, c) = (sw.clone(), c.clone());
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw_) = server.into_split();
                    let up = tokio::io::copy(&mut cr, &mut sw_);
                    let down = async {
                        let mut buf = vec![0u8; 8192];
                        loop {
                            let n = sr.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            if !sw.load(Ordering::SeqCst) && cw.write_all(&buf[..n]).await.is_err()
                            {
                                break;
                            }
                        }
                    };
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                        _ = c.notified() => {}
                    }
                    // Dropping both halves closes both connections.
                });
            }
        });
        Proxy { addr, swallow, cut }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_whose_acks_were_lost_are_resent_and_acked_as_duplicates() {
    let s = TestServer::start().await;
    let proxy = Proxy::start(s.addr).await;
    let mut l = s.listen("en", None).await;
    let (mut w, r) = tokio::io::duplex(4096);
    let push = spawn_push(
        PushOptions::new(publish_url(proxy.addr, "en"), token("en")),
        r,
    );

    w.write_all(b"Alpha line.\n").await.unwrap();
    assert_eq!(next_line(&mut l).await["text"], "Alpha line.");

    // The server stores and acks these, but the acks never arrive.
    proxy.swallow.store(true, Ordering::SeqCst);
    w.write_all(b"Beta line.\nGamma line.\n").await.unwrap();
    assert_eq!(next_line(&mut l).await["seq"], 2);
    assert_eq!(next_line(&mut l).await["seq"], 3);
    // The connection drops; push reconnects and sends Beta and Gamma again, same ids.
    proxy.swallow.store(false, Ordering::SeqCst);
    proxy.cut.notify_waiters();
    w.write_all(b"Delta line.\n").await.unwrap();
    assert_eq!(next_line(&mut l).await["text"], "Delta line.");
    drop(w);

    let report = finish(push).await;
    assert_eq!(report.lines, 4);
    assert_eq!(report.acked, 4);
    assert!(report.connections >= 2, "{report:?}");
    // Beta and Gamma for sure; Alpha if its ack was still in flight at the swallow, and Delta
    // if push wrote it to the old connection before seeing it cut (stored, ack lost).
    assert!(
        (2..=4).contains(&report.duplicates),
        "Beta and Gamma (and maybe Alpha, Delta) acked as duplicates: {report:?}"
    );
    let hub = s.server().hub().clone();
    let texts: Vec<String> =
        tokio::task::spawn_blocking(move || hub.store.range(EVENT, "en", 0, 100))
            .await
            .unwrap()
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == Kind::Line)
            .map(|r| r.text)
            .collect();
    assert_eq!(
        texts,
        ["Alpha line.", "Beta line.", "Gamma line.", "Delta line."]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_stops_push_with_a_clear_error() {
    let s = TestServer::start().await;
    let (_w, r) = tokio::io::duplex(64);
    let push = spawn_push(
        PushOptions::new(
            s.ws(&TestServer::channel_path("en", "publish")),
            "wrong-token-123",
        ),
        r,
    );
    let err = tokio::time::timeout(Duration::from_secs(10), push)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, PushError::Rejected(_)), "{err}");
    assert!(err.to_string().contains("401"), "{err}");
}
