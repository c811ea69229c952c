//! The load generator's clients: listeners that check every seq and time every delivery, and
//! publishers that send timestamped finals and partials and resend unacknowledged finals
//! (same client id, so nothing is stored twice) after a reconnect.

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{now_micros, Shared};
use crate::protocol::{CLOSE_BEHIND, CLOSE_GOING_AWAY};

/// A client socket: listeners read small frames, so a small read buffer keeps thousands of
/// them cheap on the load generator's side too.
const CLIENT_READ_BUFFER: usize = 4 * 1024;
/// The longest a connection may wait for its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// First and longest pause between reconnect attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(1000);

type Ws = WebSocketStream<TcpStream>;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("no hello within {HELLO_TIMEOUT:?}")]
    NoHello,
    #[error("unexpected first message: {0}")]
    BadHello(String),
}

/// What a connection learnt from its hello.
struct Hello {
    seq: u64,
    reset: bool,
}

/// Opens a WebSocket to `path` from `source` (when given) and reads the hello.
/// Lets the kernel pick the source port at `connect` (by the whole address 4-tuple) rather
/// than at `bind` (by the local address alone). Without it, a bound socket cannot reuse a port
/// still in TIME_WAIT from an earlier run against another server port, and a 15,000-listener
/// run right after another one exhausts the ephemeral range (EADDRINUSE).
fn bind_no_port(sock: &TcpSocket) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: a valid socket fd and a c_int option value of the size given.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = sock;
    Ok(())
}

async fn connect(
    addr: SocketAddr,
    host: &str,
    path: &str,
    source: Option<IpAddr>,
    rcvbuf: Option<u32>,
) -> Result<(Ws, Hello), ConnectError> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(n) = rcvbuf.filter(|&n| n > 0) {
        sock.set_recv_buffer_size(n)?;
    }
    if let Some(ip) = source {
        bind_no_port(&sock)?;
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = sock.connect(addr).await?;
    stream.set_nodelay(true)?;
    let req = format!("ws://{host}{path}").into_client_request()?;
    let config = WebSocketConfig::default()
        .read_buffer_size(CLIENT_READ_BUFFER)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(config)).await?;
    let hello = loop {
        match tokio::time::timeout(HELLO_TIMEOUT, ws.next()).await {
            Err(_) => return Err(ConnectError::NoHello),
            Ok(None) => return Err(ConnectError::NoHello),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(Some(Ok(Message::Text(t)))) => break t,
            Ok(Some(Ok(_))) => continue,
        }
    };
    let v: serde_json::Value =
        serde_json::from_str(&hello).map_err(|_| ConnectError::BadHello(hello.to_string()))?;
    if v["type"] != "hello" {
        return Err(ConnectError::BadHello(hello.to_string()));
    }
    let seq = v["seq"].as_u64().unwrap_or(0);
    let reset = v["reset"].as_bool().unwrap_or(false);
    Ok((ws, Hello { seq, reset }))
}

/// Connects a listener without `since` to learn the channel's last seq.
pub(super) async fn probe(
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> Result<(Ws, u64), ConnectError> {
    let (ws, hello) = connect(addr, host, path, None, None).await?;
    Ok((ws, hello.seq))
}

/// The seq of a channel event (line, edit, handover: `{"type":"…","seq":N,…}`), read without
/// parsing the JSON; `None` for other messages (hello, status, partial).
fn event_seq(t: &str) -> Option<u64> {
    let rest = t.strip_prefix("{\"type\":\"")?;
    let rest = &rest[rest.find('"')?..];
    let rest = rest.strip_prefix("\",\"seq\":")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

/// The publisher timestamp (Unix µs) of the first `[lg:…]` token in a frame.
fn token_micros(t: &str) -> Option<u64> {
    let i = t.find("[lg:")? + 4;
    let end = i + t[i..].find(']')?;
    t[i..end].rsplit(':').next()?.parse().ok()
}

/// What one listener saw, judged against the channel's last seq at the end.
#[derive(Debug, Default, Clone)]
pub struct ListenerOutcome {
    pub slow: bool,
    pub connected: bool,
    pub missing: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub resets: u64,
    pub reconnects: u64,
}

/// Seq bookkeeping of one listener.
struct Track {
    base: u64,
    next: u64,
    holes: BTreeSet<u64>,
    duplicated: u64,
    out_of_order: u64,
}

impl Track {
    fn on_seq(&mut self, seq: u64) {
        if seq <= self.base {
            return; // history from before the run
        }
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            self.holes.extend(self.next..seq);
            self.next = seq + 1;
        } else if self.holes.remove(&seq) {
            self.out_of_order += 1;
        } else {
            self.duplicated += 1;
        }
    }

    /// Every seq up to this one has been seen.
    fn contiguous(&self) -> u64 {
        self.holes.first().map_or(self.next - 1, |&first| first - 1)
    }
}

/// Runs listener `idx` until the run stops: connect, read, reconnect with `since=`.
pub(super) async fn listener(
    shared: Arc<Shared>,
    idx: usize,
    chan: usize,
    slow: bool,
) -> ListenerOutcome {
    let ch = &shared.channels[chan];
    let base = ch.base.load(Ordering::Relaxed);
    let mut track = Track {
        base,
        next: base + 1,
        holes: BTreeSet::new(),
        duplicated: 0,
        out_of_order: 0,
    };
    let mut out = ListenerOutcome {
        slow,
        ..Default::default()
    };
    let mut drop_rx = shared.drop_all.subscribe();
    let mut disconnected: Option<Instant> = None;
    let mut backoff = BACKOFF_MIN;
    let mut source_slot = idx % shared.cfg.source_addrs.max(1);
    'connect: loop {
        let since = track.contiguous();
        let path = format!("{}?since={since}", ch.path);
        let permit = shared.connect_slots.acquire().await;
        let started = Instant::now();
        let source = shared.source(source_slot);
        let result = tokio::select! {
            _ = shared.stop.cancelled() => break 'connect,
            r = connect(shared.addr, &shared.host, &path, source, slow.then_some(shared.cfg.slow_rcvbuf)) => r,
        };
        drop(permit);
        let mut ws = match result {
            Ok((ws, hello)) => {
                if hello.reset {
                    out.resets += 1;
                }
                let _ = hello.seq;
                ws
            }
            Err(e) => {
                if let ConnectError::Io(io) = &e {
                    if matches!(
                        io.kind(),
                        std::io::ErrorKind::AddrInUse | std::io::ErrorKind::AddrNotAvailable
                    ) {
                        // This source address ran out of ports: move on to the next one.
                        source_slot += shared.cfg.source_addrs.max(1);
                    }
                }
                shared
                    .counters
                    .connect_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(listener = idx, error = %e, "connect failed; retrying");
                tokio::select! {
                    _ = shared.stop.cancelled() => break 'connect,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        match disconnected.take() {
            None => {
                if !out.connected {
                    out.connected = true;
                    shared
                        .connect_time
                        .record(started.elapsed().as_micros() as u64);
                    shared.counters.connected.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(at) => {
                out.reconnects += 1;
                shared.resume_time.record(at.elapsed().as_micros() as u64);
                shared.counters.resumed.fetch_add(1, Ordering::Relaxed);
                shared.mark_resumed();
            }
        }
        loop {
            let msg = tokio::select! {
                biased;
                _ = shared.stop.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    break 'connect;
                }
                r = drop_rx.changed() => {
                    if r.is_err() {
                        break 'connect;
                    }
                    // Client-side reconnect storm: drop the socket without a goodbye.
                    drop(ws);
                    shared.mark_disconnected();
                    disconnected = Some(Instant::now());
                    continue 'connect;
                }
                msg = ws.next() => msg,
            };
            let text = match msg {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(0);
                    let c = &shared.counters;
                    match code {
                        CLOSE_GOING_AWAY => c.close_going_away.fetch_add(1, Ordering::Relaxed),
                        CLOSE_BEHIND => c.close_behind.fetch_add(1, Ordering::Relaxed),
                        _ => c.close_other.fetch_add(1, Ordering::Relaxed),
                    };
                    break;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    shared.counters.close_other.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            };
            let t = text.as_str();
            if let Some(seq) = event_seq(t) {
                track.on_seq(seq);
                shared.progress[idx].store(track.contiguous(), Ordering::Relaxed);
                if let Some(sent) = token_micros(t) {
                    let lat = now_micros().saturating_sub(sent);
                    if slow {
                        shared.latency_slow.record(lat);
                    } else {
                        shared.latency_fast.record(lat);
                    }
                }
                shared.counters.line_frames.fetch_add(1, Ordering::Relaxed);
            } else if t.starts_with(r#"{"type":"partial""#) {
                if let Some(sent) = token_micros(t) {
                    shared
                        .partial_latency
                        .record(now_micros().saturating_sub(sent));
                }
                shared
                    .counters
                    .partial_frames
                    .fetch_add(1, Ordering::Relaxed);
                if slow {
                    shared
                        .counters
                        .slow_partial_frames
                        .fetch_add(1, Ordering::Relaxed);
                }
            } else {
                shared.counters.other_frames.fetch_add(1, Ordering::Relaxed);
            }
            if slow && shared.live.load(Ordering::Relaxed) {
                tokio::time::sleep(shared.slow_delay).await;
            }
        }
        shared.mark_disconnected();
        disconnected = Some(Instant::now());
    }
    let target = shared.channels[chan].target.load(Ordering::Relaxed);
    out.missing = track.holes.len() as u64 + target.saturating_sub(track.next - 1);
    out.duplicated = track.duplicated;
    out.out_of_order = track.out_of_order;
    out
}

/// What one publisher did.
#[derive(Debug, Default, Clone)]
pub struct PublisherOutcome {
    pub finals_sent: u64,
    pub acked: u64,
    pub duplicate_acks: u64,
    pub errors: u64,
    pub unacked: u64,
    pub partials_sent: u64,
    pub reconnects: u64,
    pub last_seq: u64,
    /// The publisher never got a connection: nothing was published, so nothing was tested.
    pub never_connected: bool,
}

/// Sample sentences the captions are cut from.
const SAMPLES: [&str; 3] = [
    "The delegates agreed to continue the discussion on renewable energy after the coffee break. ",
    "各位代表同意在茶歇之后继续讨论可再生能源问题，主席感谢各国代表团的积极参与。",
    "اتفق المندوبون على مواصلة النقاش حول الطاقة المتجددة بعد استراحة القهوة، وشكر الرئيس الوفود. ",
];

/// A caption of exactly `size` bytes or a little less (never splitting a character): the
/// timestamp token, then text in the sample language.
pub fn caption(token: &str, size: usize, lang: usize) -> String {
    let mut s = String::with_capacity(size + 4);
    s.push_str(token);
    s.push(' ');
    for c in SAMPLES[lang % SAMPLES.len()].chars().cycle() {
        if s.len() + c.len_utf8() > size {
            break;
        }
        s.push(c);
    }
    s
}

/// Runs publisher `idx` on channel `chan` for the run's duration, then waits for its acks.
pub(super) async fn publisher(shared: Arc<Shared>, idx: usize, chan: usize) -> PublisherOutcome {
    let cfg = &shared.cfg;
    let ch = &shared.channels[chan];
    let path = format!("{}?token={}", ch.publish_path, cfg.token);
    let mut out = PublisherOutcome::default();
    let mut pending: VecDeque<(String, String, u64)> = VecDeque::new();
    let end = Instant::now() + Duration::from_secs_f64(cfg.duration_secs);
    let ack_deadline = end + Duration::from_secs(cfg.drain_secs);
    let mut lines = tokio::time::interval(Duration::from_secs_f64(1.0 / cfg.rate.max(0.001)));
    lines.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let partial_every = if cfg.partial_rate > 0.0 {
        Duration::from_secs_f64(1.0 / cfg.partial_rate)
    } else {
        Duration::from_secs(3600)
    };
    let mut partials = tokio::time::interval(partial_every);
    partials.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let lang = |n: u64| match cfg.text.as_str() {
        "zh" => 1,
        "ar" => 2,
        "mix" => n as usize % 3,
        _ => 0,
    };
    let mut n = 0u64;
    let mut p = 0u64;
    let mut backoff = BACKOFF_MIN;
    out.never_connected = true;
    'connect: loop {
        if Instant::now() > ack_deadline || shared.stop.is_cancelled() {
            break;
        }
        let mut ws = match connect(shared.addr, &shared.host, &path, shared.source(0), None).await {
            Ok((ws, _)) => ws,
            Err(e) => {
                tracing::warn!(publisher = idx, error = %e, "publisher connect failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        out.never_connected = false;
        if n > 0 {
            out.reconnects += 1;
        }
        // Resend what was not acknowledged: the same ids make the server answer `duplicate`.
        for (id, text, _) in &pending {
            let m = serde_json::json!({"type": "final", "text": text, "id": id});
            if ws.feed(Message::Text(m.to_string().into())).await.is_err() {
                continue 'connect;
            }
        }
        if ws.flush().await.is_err() {
            continue 'connect;
        }
        loop {
            let sending = Instant::now() < end;
            if !sending && pending.is_empty() {
                let _ = ws.close(None).await;
                break 'connect;
            }
            tokio::select! {
                _ = shared.stop.cancelled() => break 'connect,
                _ = tokio::time::sleep_until(ack_deadline.into()), if !sending => break 'connect,
                _ = lines.tick(), if sending => {
                    n += 1;
                    let token = format!("[lg:{idx}:{n}:{}]", now_micros());
                    let text = caption(&token, cfg.size, lang(n));
                    let id = format!("lg-{}-{idx}-{n}", shared.run_id);
                    let m = serde_json::json!({"type": "final", "text": text, "id": id});
                    pending.push_back((id, text, now_micros()));
                    out.finals_sent += 1;
                    if ws.send(Message::Text(m.to_string().into())).await.is_err() {
                        break;
                    }
                }
                _ = partials.tick(), if sending && cfg.partial_rate > 0.0 => {
                    p += 1;
                    let token = format!("[lg:{idx}:p{p}:{}]", now_micros());
                    let text = caption(&token, cfg.size, lang(n + 1));
                    let m = serde_json::json!({"type": "partial", "text": text});
                    out.partials_sent += 1;
                    if ws.send(Message::Text(m.to_string().into())).await.is_err() {
                        break;
                    }
                }
                msg = ws.next() => {
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => continue,
                    };
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                        continue;
                    };
                    match v["type"].as_str() {
                        Some("ack") => {
                            let id = v["id"].as_str().unwrap_or("");
                            if let Some(i) = pending.iter().position(|(pid, _, _)| pid == id) {
                                let (_, _, sent) = pending.remove(i).expect("index in range");
                                shared.ack_latency.record(now_micros().saturating_sub(sent));
                                out.acked += 1;
                                shared.counters.acked.fetch_add(1, Ordering::Relaxed);
                            }
                            if v["duplicate"].as_bool() == Some(true) {
                                out.duplicate_acks += 1;
                            }
                            let seq = v["seq"].as_u64().unwrap_or(0);
                            out.last_seq = out.last_seq.max(seq);
                            ch.last_acked.fetch_max(seq, Ordering::Relaxed);
                        }
                        Some("error") => {
                            out.errors += 1;
                            tracing::warn!(publisher = idx, message = %text, "publisher got an error");
                        }
                        _ => {}
                    }
                }
            }
        }
        // Connection lost (server restart): back off a little and reconnect.
        tokio::select! {
            _ = shared.stop.cancelled() => break,
            _ = tokio::time::sleep(BACKOFF_MIN) => {}
        }
    }
    out.unacked = pending.len() as u64;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_have_the_size_and_the_token() {
        for lang in 0..3 {
            let c = caption("[lg:0:1:1700000000000000]", 80, lang);
            assert!(c.len() <= 80 && c.len() > 75, "{lang}: {} {c}", c.len());
            assert_eq!(token_micros(&c), Some(1_700_000_000_000_000));
        }
    }

    #[test]
    fn scans_frames() {
        let f = r#"{"type":"line","seq":42,"text":"[lg:3:9:123] hi \"seq\":7","lang":"en","ts":1}"#;
        assert_eq!(event_seq(f), Some(42));
        assert_eq!(token_micros(f), Some(123));
        let h = r#"{"type":"handover","seq":9,"from":null}"#;
        assert_eq!(event_seq(h), Some(9));
        assert_eq!(event_seq(r#"{"type":"hello","event":"e","seq":3}"#), None);
        assert_eq!(event_seq(r#"{"type":"partial","text":"\"seq\":4"}"#), None);
    }

    #[test]
    fn tracks_gaps_duplicates_and_order() {
        let mut t = Track {
            base: 10,
            next: 11,
            holes: BTreeSet::new(),
            duplicated: 0,
            out_of_order: 0,
        };
        for s in [5, 11, 12, 14, 12, 13, 15] {
            t.on_seq(s);
        }
        assert_eq!((t.duplicated, t.out_of_order, t.contiguous()), (1, 1, 15));
        t.on_seq(18);
        assert_eq!(t.contiguous(), 15);
        assert_eq!(t.holes.len(), 2);
    }
}
