//! Egress exactly once across a crash: the real binary forwards a channel to a caption
//! receiver that answers one post slowly, is killed with `kill -9` while that post is in
//! flight, and restarts on the same data. A Zoom forwarder asks the meeting's seq URL whether
//! the post arrived and never shows a caption twice; a post that did not arrive is sent again
//! under the same seq; YouTube gets the same seq again.
mod common;
use common::*;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::sync::Notify;

/// What the receiver does with a post whose body contains [`SLOW`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slow {
    /// Shows the caption, then never answers (the answer is lost with the sender).
    DeliverThenHang,
    /// Never gets to show it and never answers (the sender dies before the body is used).
    HangUndelivered,
}

/// The marker of the one caption the receiver answers slowly.
const SLOW: &str = "lentement";

/// A caption service on 127.0.0.1:0 (Zoom or YouTube shaped): GET …/seq answers the last seq
/// it showed; a post is shown (recorded with its seq) and answered at once, except the post
/// carrying [`SLOW`], which `slow` decides about, once.
#[derive(Clone)]
struct Receiver {
    /// Every post that arrived: (seq, body).
    arrived: Arc<Mutex<Vec<(u64, String)>>>,
    /// Every caption shown to the meeting: (seq, body).
    shown: Arc<Mutex<Vec<(u64, String)>>>,
    seq: Arc<AtomicU64>,
    slow: Arc<Mutex<Option<Slow>>>,
    /// GETs of the seq URL still to fail with 503 (a meeting that does not answer yet).
    seq_failures: Arc<AtomicUsize>,
    /// GETs of the seq URL seen.
    seq_queries: Arc<AtomicUsize>,
    notify: Arc<Notify>,
}

fn query_seq(target: &str) -> u64 {
    target
        .split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("seq=")))
        .and_then(|v| v.parse().ok())
        .expect("every post carries a seq")
}

async fn handle(State(r): State<Receiver>, req: Request) -> axum::response::Response {
    let target = req.uri().to_string();
    let is_get = req.method() == "GET";
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    if is_get {
        assert!(target.contains("/seq"), "{target}");
        r.seq_queries.fetch_add(1, Ordering::SeqCst);
        if r.seq_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response();
        }
        return (StatusCode::OK, r.seq.load(Ordering::SeqCst).to_string()).into_response();
    }
    let seq = query_seq(&target);
    r.arrived.lock().unwrap().push((seq, body.clone()));
    let slow = if body.contains(SLOW) {
        r.slow.lock().unwrap().take()
    } else {
        None
    };
    if slow != Some(Slow::HangUndelivered) {
        r.shown.lock().unwrap().push((seq, body));
        r.seq.fetch_max(seq, Ordering::SeqCst);
    }
    r.notify.notify_waiters();
    if slow.is_some() {
        std::future::pending::<()>().await;
    }
    (StatusCode::OK, "2024-05-01T09:30:00.000").into_response()
}

impl Receiver {
    async fn start(slow: Slow) -> (Receiver, String) {
        let r = Receiver {
            arrived: Arc::default(),
            shown: Arc::default(),
            seq: Arc::default(),
            slow: Arc::new(Mutex::new(Some(slow))),
            seq_failures: Arc::default(),
            seq_queries: Arc::default(),
            notify: Arc::default(),
        };
        let app = axum::Router::new().fallback(handle).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, base)
    }

    /// Waits until `done` holds for (arrived, shown).
    async fn until(&self, what: &str, done: impl Fn(&[(u64, String)], &[(u64, String)]) -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let notified = self.notify.notified();
                if done(&self.arrived.lock().unwrap(), &self.shown.lock().unwrap()) {
                    return;
                }
                notified.await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "receiver: {what}; arrived {:?}, shown {:?}",
            self.arrived.lock().unwrap(),
            self.shown.lock().unwrap()
        );
    }

    fn shown(&self) -> Vec<(u64, String)> {
        self.shown.lock().unwrap().clone()
    }

    fn arrived(&self) -> Vec<(u64, String)> {
        self.arrived.lock().unwrap().clone()
    }
}

/// The test config's last channel (`fr`) forwarding to `url`.
fn forwarder(kind: &str, url: &str) -> String {
    format!("[[events.channels.forward]]\nkind = \"{kind}\"\nurl = \"{url}\"\n")
}

async fn publish(bin: &BinServer, text: &str) {
    let mut p = bin.publish("fr").await;
    let ack = p.final_line(text, None).await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

/// Publishes a line, then the slow one, and kills the binary while the slow post is in
/// flight; restarts on the same data and publishes a third line, which the receiver must show
/// under the next seq. After the crash the seq URL fails `seq_failures` times. Returns the
/// receiver.
async fn crash_mid_post(kind: &str, slow: Slow, seq_failures: usize) -> Receiver {
    let (rx, base) = Receiver::start(slow).await;
    let url = format!("{base}/closedcaption?id=200610693&ns=GZHkEA==&expire=86400");
    let tmp = tempfile::tempdir().unwrap();
    let extra = forwarder(kind, &url);
    let mut bin = BinServer::start_with(tmp.path(), &extra).await;
    publish(&bin, "Premier sous-titre.").await;
    rx.until("first caption shown", |_, shown| shown.len() == 1)
        .await;
    publish(&bin, &format!("Deuxième, {SLOW}.")).await;
    rx.until("the slow post in flight", |arrived, _| arrived.len() == 2)
        .await;
    bin.kill9().await;

    rx.seq_failures.store(seq_failures, Ordering::SeqCst);
    let bin = BinServer::start_with(tmp.path(), &extra).await;
    publish(&bin, "Troisième sous-titre.").await;
    rx.until("the caption published after the restart", |_, shown| {
        shown.iter().any(|(_, b)| b.contains("Troisième"))
    })
    .await;
    rx
}

fn bodies(kind: &str, shown: &[(u64, String)]) -> Vec<(u64, String)> {
    shown
        .iter()
        .map(|(seq, body)| {
            // YouTube bodies start with a timestamp line.
            let text = match kind {
                "youtube" => body.split_once('\n').unwrap().1.to_string(),
                _ => body.clone(),
            };
            (*seq, text)
        })
        .collect()
}

fn expected() -> Vec<(u64, String)> {
    vec![
        (1, "Premier sous-titre.\n".to_string()),
        (2, format!("Deuxième, {SLOW}.\n")),
        (3, "Troisième sous-titre.\n".to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_never_shows_a_delivered_caption_twice_after_kill_9_mid_post() {
    let rx = crash_mid_post("zoom", Slow::DeliverThenHang, 0).await;
    // The meeting showed every caption once, in order, under consecutive seqs.
    assert_eq!(bodies("zoom", &rx.shown()), expected());
    // And nothing was posted again: the restarted forwarder asked the seq URL instead.
    assert_eq!(rx.arrived(), rx.shown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_waits_for_the_seq_url_rather_than_guess_after_a_crash() {
    // The meeting does not answer the seq query at first: the forwarder asks again (and posts
    // nothing) until it knows.
    let rx = crash_mid_post("zoom", Slow::DeliverThenHang, 3).await;
    assert_eq!(bodies("zoom", &rx.shown()), expected());
    assert_eq!(rx.arrived(), rx.shown());
    // Once before the crash, four times after it.
    assert_eq!(rx.seq_queries.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_posts_an_undelivered_caption_again_under_the_same_seq() {
    let rx = crash_mid_post("zoom", Slow::HangUndelivered, 0).await;
    assert_eq!(bodies("zoom", &rx.shown()), expected());
    let arrived = bodies("zoom", &rx.arrived());
    // The slow post arrived twice under seq 2: the lost attempt and the retry.
    assert_eq!(
        arrived,
        [
            expected()[0].clone(),
            expected()[1].clone(),
            expected()[1].clone(),
            expected()[2].clone()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn youtube_resends_the_post_in_flight_under_the_same_seq() {
    let rx = crash_mid_post("youtube", Slow::DeliverThenHang, 0).await;
    let arrived = bodies("youtube", &rx.arrived());
    // YouTube has no seq query: the post in flight is sent again with its seq (YouTube drops a
    // seq it already has), and the next line takes the next seq.
    assert_eq!(
        arrived,
        [
            expected()[0].clone(),
            expected()[1].clone(),
            expected()[1].clone(),
            expected()[2].clone()
        ]
    );
}
