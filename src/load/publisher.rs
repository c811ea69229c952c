//! A load-run publisher: sends timestamped finals (and partials) at the configured rate,
//! resends unacknowledged finals after a reconnect (same client id, so nothing is stored
//! twice), then waits for the last acks.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use super::captions::caption;
use super::client::{connect, BACKOFF_MAX, BACKOFF_MIN};
use super::{now_micros, RunState};
use crate::protocol::ClientMsg;

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

/// Runs publisher `idx` on channel `chan` for the run's duration, then waits for its acks.
pub(super) async fn publisher(shared: Arc<RunState>, idx: usize, chan: usize) -> PublisherOutcome {
    let cfg = &shared.cfg;
    let ch = &shared.channels[chan];
    let path = format!("{}?token={}", ch.publish_path, cfg.token);
    let mut out = PublisherOutcome::default();
    let mut pending: VecDeque<(String, String, u64)> = VecDeque::new();
    let publishing = Duration::from_secs_f64(cfg.duration_secs);
    let on_air = Duration::from_secs_f64(cfg.on_air_secs.max(0.0));
    // From the first line, once on air (set again when the first connection is made).
    let mut end = Instant::now() + on_air + publishing;
    let mut ack_deadline = end + Duration::from_secs(cfg.drain_secs);
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
        let connecting = connect(
            shared.addr,
            &shared.host,
            &path,
            shared.source(0),
            None,
            shared.tls.as_ref(),
        );
        let mut ws = match connecting.await {
            Ok((ws, _)) => ws,
            Err(e) => {
                tracing::warn!(publisher = idx, error = %e, "publisher connect failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        if out.never_connected && !on_air.is_zero() {
            // On air: the listeners hear of it before the first line.
            tokio::select! {
                _ = shared.stop.cancelled() => break,
                _ = tokio::time::sleep(on_air) => {}
            }
            end = Instant::now() + publishing;
            ack_deadline = end + Duration::from_secs(cfg.drain_secs);
            lines.reset_immediately();
            partials.reset();
        }
        out.never_connected = false;
        if n > 0 {
            out.reconnects += 1;
        }
        // Resend what was not acknowledged: the same ids make the server answer `duplicate`.
        for (id, text, _) in &pending {
            let m = ClientMsg::Final {
                text: text.clone(),
                id: Some(id.clone()),
            };
            if ws.feed(Message::Text(m.to_json().into())).await.is_err() {
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
                    let m = ClientMsg::Final {
                        text: text.clone(),
                        id: Some(id.clone()),
                    };
                    pending.push_back((id, text, now_micros()));
                    out.finals_sent += 1;
                    if ws.send(Message::Text(m.to_json().into())).await.is_err() {
                        break;
                    }
                }
                _ = partials.tick(), if sending && cfg.partial_rate > 0.0 => {
                    p += 1;
                    let token = format!("[lg:{idx}:p{p}:{}]", now_micros());
                    let text = caption(&token, cfg.size, lang(n + 1));
                    let m = ClientMsg::Partial { text };
                    out.partials_sent += 1;
                    if ws.send(Message::Text(m.to_json().into())).await.is_err() {
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
