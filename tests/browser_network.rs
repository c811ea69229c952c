//! The attendee page on a bad network, in a real headless Chromium (tests/common/browser.rs):
//! the browser going offline (DevTools network conditions), a connection that dies silently
//! (a proxy that stops passing bytes, as dropped Wi-Fi does: no close, no error), and a slow
//! link (emulated latency) on which the first caption must not wait for the event list.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use browser::*;
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The page's dead-connection bound (web/common.js `DEAD_AFTER_MS`) plus its 1 s check and a
/// margin for a loaded machine.
const DEAD_NOTICED_WITHIN: Duration = Duration::from_secs(13);
/// Longer than the page's dead-connection bound: a quiet channel must stay live this long.
const QUIET_FOR: Duration = Duration::from_secs(12);

const CONN_STATE: &str = "return document.getElementById('conn').dataset.state";

/// A TCP proxy whose open connections can be turned into black holes: bytes are read and
/// dropped in both directions, nothing is closed. Connections made afterwards pass normally.
struct BlackHoleProxy {
    addr: SocketAddr,
    /// Connections accepted before this generation are black holes.
    generation: Arc<AtomicU64>,
}

impl BlackHoleProxy {
    async fn start(upstream: SocketAddr) -> BlackHoleProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let generation = Arc::new(AtomicU64::new(0));
        let gen = generation.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let born = gen.load(Ordering::SeqCst);
                let gen = gen.clone();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let g = gen.clone();
                tokio::spawn(async move { pass(&mut cr, &mut sw, born, &g).await });
                tokio::spawn(async move { pass(&mut sr, &mut cw, born, &gen).await });
            }
        });
        BlackHoleProxy { addr, generation }
    }

    /// From now on, every connection open so far passes nothing, and stays open.
    fn black_hole(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either ends; once the connection is a black hole, reads and
/// drops.
async fn pass(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    born: u64,
    gen: &AtomicU64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        if gen.load(Ordering::SeqCst) == born && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Issue 14, item 4: the browser says it is offline (DevTools network conditions fire its
/// `offline` event): the badge says so at once, the stale partial goes, and when the network
/// is back the page resumes by itself with every line committed meanwhile, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_is_shown_at_once_and_resumes_without_gap_or_duplicate() {
    let s = TestServer::start().await;
    let b = &Browser::start().await;
    b.goto(&s.http("/e/conf?channel=en")).await;
    b.wait_live("#conn").await;
    let mut p = s.publish("en").await;
    p.final_line("Before the network dropped.", Some("n1"))
        .await;
    p.send_json(json!({"type": "partial", "text": "Half a sent"}))
        .await;
    b.wait_eq(
        "partial",
        MAIN_PARTIAL,
        json!("Half a sent"),
        CAPTION_DEADLINE,
    )
    .await;
    b.network(true, 0).await;
    b.wait_eq(
        "offline at once, partial cleared",
        "const n = document.getElementById('notice'); return [document.getElementById('conn').dataset.state, document.querySelector('#conn .conn-text').textContent, document.querySelector('#pane-main .partial').hidden, !n.hidden && n.textContent]",
        json!([
            "offline",
            "Offline",
            true,
            "You are offline. Captions come back by themselves when the network does."
        ]),
        Duration::from_secs(2),
    )
    .await;
    for i in 2..=3 {
        p.final_line(&format!("Line {i}, while offline."), Some(&format!("n{i}")))
            .await;
    }
    b.network(false, 0).await;
    b.wait_eq(
        "live again, once more connected",
        "const c = document.getElementById('conn'); return [c.dataset.state, c.dataset.connections, document.getElementById('notice').hidden]",
        json!(["live", "2", true]),
        PAGE_TIMEOUT,
    )
    .await;
    b.wait_eq(
        "every line once",
        MAIN_LINES,
        json!([
            ["1", "Before the network dropped.", "en"],
            ["2", "Line 2, while offline.", "en"],
            ["3", "Line 3, while offline.", "en"]
        ]),
        PAGE_TIMEOUT,
    )
    .await;
}

/// Issue 14, item 4: a connection that dies without a word (the proxy stops passing bytes)
/// is noticed within about ten seconds, thanks to the server's heartbeat on quiet channels:
/// a quiet but healthy channel stays live longer than that. The page then reconnects by
/// itself and shows what was committed meanwhile, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_dead_connection_is_noticed_and_resumed() {
    let s = TestServer::start().await;
    let proxy = BlackHoleProxy::start(s.addr).await;
    let b = &Browser::start().await;
    let mut p = s.publish("en").await;
    p.final_line("The channel then goes quiet.", Some("q1"))
        .await;
    b.goto(&format!("http://{}/e/conf?channel=en", proxy.addr))
        .await;
    b.wait_live("#conn").await;
    p.send_json(json!({"type": "partial", "text": "A thought left hanging"}))
        .await;
    b.wait_eq(
        "partial",
        MAIN_PARTIAL,
        json!("A thought left hanging"),
        CAPTION_DEADLINE,
    )
    .await;
    // Quiet for longer than the dead-connection bound: the heartbeat keeps the page live.
    let quiet = Instant::now();
    while quiet.elapsed() < QUIET_FOR {
        let state = b.js(CONN_STATE, vec![]).await;
        assert_eq!(state, json!("live"), "a quiet channel is not a dead one");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    proxy.black_hole();
    let cut = Instant::now();
    b.wait_eq(
        "dead connection noticed, stale partial cleared",
        "return [document.getElementById('conn').dataset.state !== 'live', document.querySelector('#pane-main .partial').hidden]",
        json!([true, true]),
        DEAD_NOTICED_WITHIN,
    )
    .await;
    eprintln!("dead connection noticed after {:?}", cut.elapsed());
    p.final_line("Said while the page was away.", Some("q2"))
        .await;
    b.wait_eq(
        "back to live by itself",
        "const c = document.getElementById('conn'); return [c.dataset.state, c.dataset.connections]",
        json!(["live", "2"]),
        PAGE_TIMEOUT,
    )
    .await;
    b.wait_eq(
        "no gap, no duplicate",
        MAIN_LINES,
        json!([
            ["1", "The channel then goes quiet.", "en"],
            ["2", "Said while the page was away.", "en"]
        ]),
        PAGE_TIMEOUT,
    )
    .await;
}

/// Test instrumentation run before the page's own scripts: when each listen socket was made.
const RECORD_SOCKETS: &str = r#"
(() => {
  const Native = WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(url, ...rest) {
      super(url, ...rest);
      window.__sockets.push([String(url), performance.now()]);
    }
  };
})();
"#;

/// Issue 14, item 10: on a slow link (every request 800 ms) the attendee page opens its caption
/// socket and fetches the words of the channel's language while the event list is still on
/// its way, instead of one after the other; the first caption shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_caption_does_not_wait_for_the_event_list() {
    let s = TestServer::start().await;
    let mut p = s.publish("zh").await;
    p.final_line("欢迎各位来到会场。", Some("z1")).await;
    let b = &Browser::start().await;
    b.init_script(RECORD_SOCKETS).await;
    b.network(false, 800).await;
    b.goto(&s.http("/e/conf?channel=zh")).await;
    b.wait_eq(
        "first caption",
        MAIN_LINES,
        json!([["1", "欢迎各位来到会场。", "zh"]]),
        Duration::from_secs(20),
    )
    .await;
    let timing = b
        .js(
            "const r = performance.getEntriesByType('resource');
             const events = r.find(e => e.name.endsWith('/v1/events'));
             const zh = r.find(e => e.name.endsWith('/i18n/zh.js'));
             const ws = window.__sockets.find(([u]) => u.includes('/channels/zh/listen'));
             return [ws[1] < events.responseEnd, zh.startTime < events.responseEnd, window.__sockets.length]",
            vec![],
        )
        .await;
    assert_eq!(
        timing,
        json!([true, true, 1]),
        "[socket opened before the event list arrived, words fetched before it arrived, sockets]"
    );
    b.wait_eq(
        "the page in Chinese",
        "return [document.documentElement.lang, document.querySelector('#conn .conn-text').textContent]",
        json!(["zh", "直播中"]),
        Duration::from_secs(20),
    )
    .await;
}
