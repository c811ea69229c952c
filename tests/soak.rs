//! Soak: the real binary under steady publishing with listeners churning (each listener
//! reconnects with `since=` at random, 10% of them a minute on average). Passes when memory is
//! flat within 5% after warm-up, no file descriptor leaks, and every listener saw every event
//! of its channel exactly once, in order, across its reconnects.
//!
//! CI runs it for 60 s with 500 listeners. `benches/soak.sh` runs the 30-minute, 5,000-listener
//! version (`SOAK_SECS`, `SOAK_LISTENERS`, `SOAK_CHURN_PER_MIN`, `SOAK_RATE`, `SOAK_WARMUP_SECS`).
mod common;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// Channels listeners are spread over; each has one publisher.
const CHANNELS: &[&str] = &["floor", "en", "zh", "fr"];
/// Memory may grow this much from the end of warm-up to the end of the run.
const MEMORY_TOLERANCE: f64 = 0.05;
/// ...or this many bytes, whichever is more (allocator noise on a small CI run).
const MEMORY_SLACK: u64 = 2 << 20;
/// File descriptors the server may keep beyond its baseline once the clients are gone
/// (pooled SQLite reader connections opened by resumes that reached past memory).
const FD_SLACK: u64 = 16;
/// Events kept in memory per channel during the soak; warm-up fills it (and the fan-out ring).
const HISTORY: usize = 256;

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Params {
    secs: u64,
    listeners: usize,
    churn_per_min: f64,
    rate: f64,
    warmup_secs: u64,
}

/// The server process, with the soak's history and queue sizes.
async fn start_server(dir: &Path) -> BinServer {
    let mut options = BinOptions::new(&dir.join("data"));
    options.toml = options.toml.replacen(
        "[[events]]",
        &format!("[limits]\nhistory_in_memory = {HISTORY}\nlistener_queue = {HISTORY}\n[[events]]"),
        1,
    );
    options.rust_log = "babelcast=warn".into();
    BinServer::spawn(options).await
}

/// A channel's WebSocket URL on the server.
fn url(bin: &BinServer, channel: &str, what: &str) -> String {
    bin.ws(&TestServer::channel_path(channel, what))
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// Open file descriptors of a process.
fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64
}

/// What one listener saw.
#[derive(Default)]
struct Seen {
    /// The last seq received (every seq after the join point arrives exactly once, in order).
    last: AtomicU64,
    reconnects: AtomicU64,
    events: AtomicU64,
}

/// Problems found by any task.
#[derive(Default)]
struct Problems {
    failed: AtomicBool,
    list: Mutex<Vec<String>>,
}

impl Problems {
    fn add(&self, p: String) {
        self.failed.store(true, Ordering::Relaxed);
        let mut l = self.list.lock().unwrap();
        if l.len() < 20 {
            l.push(p);
        }
    }
}

/// One listener: joins, then reconnects with `since=` whenever its dice say so, checking
/// that seqs arrive contiguously; stops when `stop` turns true.
async fn listener(
    url: String,
    seen: Arc<Seen>,
    churn_per_sec: f64,
    seed: u64,
    mut stop: watch::Receiver<bool>,
    problems: Arc<Problems>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fresh = true;
    'connect: loop {
        if *stop.borrow() {
            return;
        }
        let target = if fresh {
            url.clone()
        } else {
            format!("{url}?since={}", seen.last.load(Ordering::Relaxed))
        };
        let mut ws = match tokio_tungstenite::connect_async(&target).await {
            Ok((ws, _)) => ws,
            Err(e) => {
                problems.add(format!("connect {target}: {e}"));
                return;
            }
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    let _ = ws.close(None).await;
                    return;
                }
                _ = tick.tick() => {
                    if rng.random_bool(churn_per_sec.min(1.0)) {
                        let _ = ws.close(None).await;
                        seen.reconnects.fetch_add(1, Ordering::Relaxed);
                        continue 'connect;
                    }
                }
                msg = ws.next() => {
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(c))) => {
                            // 4001 (behind) asks for a resume; anything else ends the run.
                            if c.as_ref().is_some_and(|c| u16::from(c.code) == 4001) {
                                continue 'connect;
                            }
                            if !*stop.borrow() {
                                problems.add(format!("closed: {c:?}"));
                            }
                            return;
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => {
                            if !*stop.borrow() {
                                problems.add(format!("read error: {e}"));
                            }
                            return;
                        }
                        None => return,
                    };
                    let v: Value = serde_json::from_str(&text).unwrap();
                    if v["type"] == "hello" {
                        if fresh {
                            seen.last.store(v["seq"].as_u64().unwrap(), Ordering::Relaxed);
                            fresh = false;
                        }
                        continue;
                    }
                    let Some(seq) = v["seq"].as_u64() else { continue };
                    let last = seen.last.load(Ordering::Relaxed);
                    if seq <= last && seen.events.load(Ordering::Relaxed) == 0 {
                        continue; // the join backlog, before the first live event
                    }
                    if seq != last + 1 {
                        problems.add(format!("{url}: seq {seq} after {last}"));
                        return;
                    }
                    seen.last.store(seq, Ordering::Relaxed);
                    seen.events.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// One publisher: `rate` finals a second until `stop`; every one must be acked. Returns the
/// last acked seq.
async fn publisher(
    url: String,
    channel: &'static str,
    rate: f64,
    warm: usize,
    warmed: tokio::sync::oneshot::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) -> u64 {
    let mut p = WsClient::connect(&url, Some(&token(channel))).await;
    let mut n = 0u64;
    let mut last = 0;
    // Warm-up: fill history and the fan-out ring (paced under limits.publisher_rate).
    for _ in 0..warm {
        n += 1;
        let ack = p
            .final_line(
                &format!("{channel} warm-up line {n}."),
                Some(&format!("{channel}-{n}")),
            )
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
        last = ack["seq"].as_u64().unwrap();
    }
    let _ = warmed.send(last);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                n += 1;
                p.send_json(json!({"type": "partial", "text": format!("{channel} line {n} in progr")})).await;
                let ack = p
                    .final_line(&format!("{channel} line {n}, steady."), Some(&format!("{channel}-{n}")))
                    .await;
                assert_eq!(ack["type"], "ack", "{ack}");
                last = ack["seq"].as_u64().unwrap();
            }
        }
    }
    let _ = p.ws.close(None).await;
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_churn_under_steady_publishing_without_leaks_or_loss() {
    let params = Params {
        secs: env("SOAK_SECS", 60),
        listeners: env("SOAK_LISTENERS", 500),
        churn_per_min: env("SOAK_CHURN_PER_MIN", 0.10),
        rate: env("SOAK_RATE", 2.0),
        warmup_secs: env("SOAK_WARMUP_SECS", 10),
    };
    let tmp = tempfile::tempdir().unwrap();
    let bin = start_server(tmp.path()).await;
    let pid = bin.pid();
    let problems = Arc::new(Problems::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (pub_stop_tx, pub_stop_rx) = watch::channel(false);

    // Publishers first, warming history up.
    let mut pubs = Vec::new();
    let mut warmed = Vec::new();
    for ch in CHANNELS {
        let (tx, rx) = tokio::sync::oneshot::channel();
        warmed.push(rx);
        pubs.push(tokio::spawn(publisher(
            url(&bin, ch, "publish"),
            ch,
            params.rate,
            HISTORY + 44,
            tx,
            pub_stop_rx.clone(),
        )));
    }
    for w in warmed {
        w.await.expect("warm-up");
    }
    let fd_base = fds(pid);

    // Listeners, spread over the channels, connected a batch at a time.
    let churn_per_sec = params.churn_per_min / 60.0;
    let mut seen = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..params.listeners {
        let ch = CHANNELS[i % CHANNELS.len()];
        let s = Arc::new(Seen::default());
        seen.push((ch, s.clone()));
        tasks.push(tokio::spawn(listener(
            url(&bin, ch, "listen"),
            s,
            churn_per_sec,
            i as u64,
            stop_rx.clone(),
            problems.clone(),
        )));
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    tokio::time::sleep(Duration::from_secs(params.warmup_secs)).await;
    let rss_warm = rss(pid);
    let fds_warm = fds(pid);
    eprintln!(
        "soak: {} listeners, warm: rss {} KiB, fds {fds_warm} (base {fd_base})",
        params.listeners,
        rss_warm / 1024
    );
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(params.secs) {
        tokio::time::sleep(Duration::from_secs(5).min(Duration::from_secs(params.secs))).await;
        let (r, f) = (rss(pid), fds(pid));
        let reconnects: u64 = seen
            .iter()
            .map(|(_, s)| s.reconnects.load(Ordering::Relaxed))
            .sum();
        eprintln!(
            "soak: t={:>4}s rss {} KiB ({:+.1}%), fds {f}, reconnects {reconnects}",
            started.elapsed().as_secs(),
            r / 1024,
            (r as f64 / rss_warm as f64 - 1.0) * 100.0
        );
        samples.push(r);
        assert!(
            !problems.failed.load(Ordering::Relaxed),
            "{:?}",
            problems.list.lock().unwrap()
        );
    }

    // Stop publishing; every listener must catch up to its channel's last seq.
    pub_stop_tx.send(true).unwrap();
    let mut last_seq = std::collections::HashMap::new();
    for (ch, p) in CHANNELS.iter().zip(pubs) {
        last_seq.insert(*ch, p.await.expect("publisher"));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let behind = seen
            .iter()
            .filter(|(ch, s)| s.last.load(Ordering::Relaxed) < last_seq[ch])
            .count();
        if behind == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{behind} listeners never caught up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rss_end = *samples.iter().rev().take(3).min().unwrap_or(&rss(pid));
    let reconnects: u64 = seen
        .iter()
        .map(|(_, s)| s.reconnects.load(Ordering::Relaxed))
        .sum();
    let events: u64 = seen
        .iter()
        .map(|(_, s)| s.events.load(Ordering::Relaxed))
        .sum();
    stop_tx.send(true).unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        !problems.failed.load(Ordering::Relaxed),
        "{:?}",
        problems.list.lock().unwrap()
    );

    // Once the clients are gone, the server's descriptors are back to where they started.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut fds_end = fds(pid);
    while fds_end > fd_base + FD_SLACK && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        fds_end = fds(pid);
    }
    eprintln!(
        "soak: done: {events} events delivered, {reconnects} reconnects, rss {} -> {} KiB, fds {fd_base} -> {fds_end}",
        rss_warm / 1024,
        rss_end / 1024
    );
    let expected_reconnects =
        params.listeners as f64 * params.churn_per_min * params.secs as f64 / 60.0;
    assert!(
        reconnects as f64 >= expected_reconnects * 0.5,
        "churn too low: {reconnects} reconnects, expected about {expected_reconnects:.0}"
    );
    assert!(
        fds_end <= fd_base + FD_SLACK,
        "file descriptors leaked: {fd_base} before the listeners, {fds_end} after"
    );
    let allowed = (rss_warm as f64 * MEMORY_TOLERANCE).max(MEMORY_SLACK as f64) as u64;
    assert!(
        rss_end <= rss_warm + allowed,
        "memory grew from {} KiB to {} KiB (allowed +{} KiB)",
        rss_warm / 1024,
        rss_end / 1024,
        allowed / 1024
    );
}
