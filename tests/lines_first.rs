//! Lines first: a partial or status pass over a hall of parked listeners stops when a line is
//! committed, the line goes to everyone, and the pass then finishes with the listeners it had
//! not reached, so a line never waits behind a frame that is no hurry (a status pass over
//! 15,000 phones takes tens of milliseconds). Every listener still gets each frame once.
//!
//! Real sockets on 127.0.0.1; the channel and its fan-out in process, on a current-thread
//! runtime, so the pass yields between its chunks of sockets and the test commits the line
//! while the pass is under way: as soon as the first listener has the status or partial.

use std::io::ErrorKind;
use std::io::Read;
use std::net::TcpStream as StdStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use babelcast::channel::{
    Channel, ChannelInfo, DirectSocket, Parked, Parking, Resume, QUIET_TICKS,
};
use babelcast::record::{Kind, Record};

/// More listeners than the fan-out writes per chunk (256); with their clients' ends, fewer
/// sockets than a default limit of 1,024 open files (the two cases run one after the other).
const N: usize = 400;

/// Nobody should be handed back here (the sockets never fill): counted, and checked.
#[derive(Default)]
struct Counted(Mutex<usize>);

impl Resume for Counted {
    fn resume(&self, _parked: Parked) {
        *self.0.lock().unwrap() += 1;
    }
}

fn line(seq: u64) -> Record {
    Record {
        seq,
        kind: Kind::Line,
        ts: 1_700_000_000_000 + seq as i64,
        text: "The line that must not wait.".into(),
        lang: "en".into(),
        of: None,
        client_id: None,
        expected_lang: None,
        author: None,
    }
}

struct Hall {
    ch: Arc<Channel>,
    clients: Vec<StdStream>,
    handed_back: Arc<Counted>,
    _sockets: Vec<DirectSocket>,
    _shutdown: tokio_util::sync::CancellationToken,
}

/// A channel with `N` parked listeners, in the order of the fan-out's slots.
async fn hall() -> Hall {
    let info = ChannelInfo {
        event: "e".into(),
        id: "en".into(),
        lang: "en".into(),
        label: "English".into(),
        source: None,
    };
    let ch = Arc::new(Channel::new(info, 0, 0, Vec::new(), 100, 64));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let handed_back = Arc::new(Counted::default());
    let parking = Parking {
        resume: handed_back.clone(),
        ping_every: Duration::from_secs(3600),
        shutdown: shutdown.clone(),
        tracker: tokio_util::task::TaskTracker::new(),
    };
    let (mut clients, mut sockets) = (Vec::new(), Vec::new());
    for _ in 0..N {
        let client = StdStream::connect(addr).unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let conn = DirectSocket::new(tcp);
        conn.track_frames();
        let sub = ch.subscribe(None, 0);
        let shown = [sub.partial.borrow().clone(), sub.status.borrow().clone()];
        let parking = parking.clone();
        let feeds = || {
            let mut f = ch.fanout_feeds();
            f.parking = Some(parking);
            f
        };
        let keep: babelcast::channel::Keep = Box::new(());
        let joined = ch
            .fanout()
            .join(&conn, ch.last_seq(), shown, || true, feeds, keep);
        assert!(joined.is_ok(), "a caught-up listener parks");
        sockets.push(conn);
        clients.push(client);
    }
    Hall {
        ch,
        clients,
        handed_back,
        _sockets: sockets,
        _shutdown: shutdown,
    }
}

/// The text frames in `buf` (server frames are unmasked).
fn parse(buf: &[u8]) -> Vec<String> {
    let (mut out, mut at) = (Vec::new(), 0);
    while buf.len() >= at + 2 {
        assert_eq!(buf[at], 0x81, "only whole text frames are written");
        let (len, head) = match buf[at + 1] {
            126 => (u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize, 4),
            n => (n as usize, 2),
        };
        if buf.len() < at + head + len {
            break;
        }
        out.push(String::from_utf8(buf[at + head..at + head + len].to_vec()).unwrap());
        at += head + len;
    }
    out
}

/// Reads what `client` was sent until it holds `want` text frames or `until` passes (a
/// blocking read: on this one-thread runtime the fan-out cannot go on meanwhile); `buf`
/// keeps the bytes between calls.
fn frames(client: &mut StdStream, buf: &mut Vec<u8>, want: usize, until: Instant) -> Vec<String> {
    let mut chunk = [0u8; 4096];
    loop {
        let out = parse(buf);
        let left = until.saturating_duration_since(Instant::now());
        if out.len() >= want || left.is_zero() {
            return out;
        }
        client.set_read_timeout(Some(left)).unwrap();
        match client.read(&mut chunk) {
            Ok(0) => return out,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return parse(buf)
            }
            Err(e) => panic!("reading a listener's socket: {e}"),
        }
    }
}

/// What each client got after `start` began a pass and a line was committed during it.
async fn overtaken(start: impl FnOnce(&Channel)) -> Vec<Vec<String>> {
    let mut h = hall().await;
    let frames_before =
        h.ch.stats
            .frames_out
            .load(std::sync::atomic::Ordering::Acquire);
    start(&h.ch);
    // The pass is under way once the first slot has the frame; the fan-out task is then
    // between two chunks (this runtime runs one task at a time).
    let mut first = Vec::new();
    for _ in 0..100 {
        tokio::task::yield_now().await;
        let soon = Instant::now() + Duration::from_millis(50);
        if !frames(&mut h.clients[0], &mut first, 1, soon).is_empty() {
            break;
        }
    }
    assert!(
        !first.is_empty(),
        "the pass never reached the first listener"
    );
    h.ch.commit(&line(1), None);
    let want = frames_before + 2 * N as u64;
    for _ in 0..100_000 {
        if h.ch
            .stats
            .frames_out
            .load(std::sync::atomic::Ordering::Acquire)
            >= want
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let until = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    for (i, c) in h.clients.iter_mut().enumerate() {
        let mut buf = if i == 0 { first.clone() } else { Vec::new() };
        got.push(frames(c, &mut buf, 2, until));
    }
    assert_eq!(
        *h.handed_back.0.lock().unwrap(),
        0,
        "nobody was handed back"
    );
    got
}

fn kinds(frames: &[String]) -> Vec<&str> {
    frames
        .iter()
        .map(|f| {
            let v: serde_json::Value = serde_json::from_str(f).unwrap();
            match v["type"].as_str().unwrap() {
                "line" => "line",
                "status" => "status",
                "partial" => "partial",
                other => panic!("unexpected frame {other}"),
            }
        })
        .collect()
}

/// Every client got `other` and the line once each; the first slots before the line, the last
/// after it.
fn check(got: &[Vec<String>], other: &str) {
    let mut overtaken = 0;
    for (i, frames) in got.iter().enumerate() {
        let k = kinds(frames);
        if k == ["line", other] {
            overtaken += 1;
        } else {
            assert_eq!(k, [other, "line"], "listener {i} got {frames:?}");
        }
    }
    assert_eq!(
        kinds(&got[0]),
        [other, "line"],
        "the first listener had the {other} before the line was committed"
    );
    assert_eq!(
        kinds(&got[N - 1]),
        ["line", other],
        "the line overtakes the {other} pass: the last listener gets the line first"
    );
    assert!(
        overtaken >= N - 256,
        "{overtaken} of {N} got the line first"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_line_does_not_wait_for_a_status_or_partial_pass() {
    // A heartbeat: the same status text in a new frame (the listeners have the old one).
    let got = overtaken(|ch| {
        for _ in 0..=QUIET_TICKS {
            ch.beat_if_quiet();
        }
    })
    .await;
    check(&got, "status");

    let got = overtaken(|ch| ch.set_partial("And now the next sentence")).await;
    check(&got, "partial");
    for frames in &got {
        assert!(frames
            .iter()
            .any(|f| f.contains("And now the next sentence")));
    }
}
