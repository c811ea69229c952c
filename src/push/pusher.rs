//! The push client's state between events: the unacked finals (resent after a reconnect),
//! the line in progress and what the server shows of it, the connection and its backoff.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::connection::Ws;
use super::{PushError, PushOptions, PushReport, FIRST_BACKOFF, MAX_BACKOFF, TRANSIENT, WINDOW};

use crate::formats::line::LineBuffer;
use crate::protocol::ClientMsg;

pub(super) struct Pending {
    pub(super) id: String,
    pub(super) text: String,
    /// Sent on an earlier connection (a resend counts in the report).
    pub(super) sent: bool,
}

/// The push state between events.
pub(super) struct Pusher {
    pub(super) opts: PushOptions,
    pub(super) ws: Option<Ws>,
    pub(super) unacked: VecDeque<Pending>,
    /// Front entries of `unacked` sent on the current connection.
    pub(super) in_flight: usize,
    pub(super) next_id: u64,
    pub(super) line: LineBuffer,
    /// The partial the server shows, as far as we know.
    pub(super) shown: String,
    pub(super) last_partial: Option<Instant>,
    pub(super) partial_due: Option<Instant>,
    pub(super) report: PushReport,
    pub(super) last_progress: Instant,
    /// Wait before the next connection attempt; doubled on every failure, reset by an ack.
    pub(super) backoff: Duration,
    pub(super) retry_at: Instant,
}

impl Pusher {
    /// Drops the connection; the next attempt comes after the backoff.
    pub(super) fn disconnect(&mut self, why: &str) {
        if self.ws.take().is_some() {
            tracing::warn!(
                reason = why,
                unacked = self.unacked.len(),
                retry_in_ms = self.backoff.as_millis() as u64,
                "disconnected; reconnecting"
            );
        }
        self.in_flight = 0;
        self.shown.clear();
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Sends finals up to the window, then flushes.
    pub(super) async fn send_window(&mut self) {
        let Some(ws) = self.ws.as_mut() else { return };
        let mut fed = false;
        while self.in_flight < WINDOW && self.in_flight < self.unacked.len() {
            let p = &mut self.unacked[self.in_flight];
            let frame = ClientMsg::Final {
                text: p.text.clone(),
                id: Some(p.id.clone()),
            }
            .to_json();
            if p.sent {
                self.report.resent += 1;
            }
            p.sent = true;
            if ws.feed(Message::Text(frame.into())).await.is_err() {
                return self.disconnect("write failed");
            }
            self.in_flight += 1;
            fed = true;
        }
        if fed && ws.flush().await.is_err() {
            self.disconnect("write failed");
        }
    }

    /// Sends the line in progress now if it differs from what the server shows.
    pub(super) async fn send_partial(&mut self) {
        self.partial_due = None;
        let text = self.line.line();
        if text == self.shown {
            return;
        }
        let Some(ws) = self.ws.as_mut() else { return };
        let frame = ClientMsg::Partial {
            text: text.to_string(),
        }
        .to_json();
        if ws.send(Message::Text(frame.into())).await.is_err() {
            return self.disconnect("write failed");
        }
        self.shown = text.to_string();
        self.last_partial = Some(Instant::now());
        self.report.partials += 1;
    }

    /// Sends the partial now, or schedules it when the last one was too recent.
    pub(super) async fn partial_changed(&mut self) {
        let now = Instant::now();
        match self.last_partial {
            Some(t) if now < t + self.opts.partial_interval => {
                self.partial_due
                    .get_or_insert(t + self.opts.partial_interval);
            }
            _ => self.send_partial().await,
        }
    }

    pub(super) fn commit(&mut self, finals: Vec<String>) {
        for text in finals {
            let id = format!("{}-{}", self.opts.id_prefix, self.next_id);
            self.next_id += 1;
            self.unacked.push_back(Pending {
                id,
                text,
                sent: false,
            });
            self.report.lines += 1;
        }
    }

    /// Applies input text: finals first (in order), then the partial of the new line.
    pub(super) async fn input(&mut self, text: &str) {
        let applied = self.line.push(text, true, self.opts.max_chars);
        if !applied.finals.is_empty() {
            // The server clears the partial when the final it belongs to is stored.
            self.shown.clear();
            self.commit(applied.finals);
            self.send_window().await;
        }
        if applied.changed {
            self.partial_changed().await;
        }
    }

    /// Handles one server message; an error is the end of the push.
    pub(super) async fn message(&mut self, text: &str) -> Result<(), PushError> {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        match v["type"].as_str() {
            Some("ack") => {
                let Some(id) = v["id"].as_str() else {
                    return Ok(());
                };
                let Some(i) = self.unacked.iter().position(|p| p.id == id) else {
                    return Ok(());
                };
                self.unacked.remove(i);
                if i < self.in_flight {
                    self.in_flight -= 1;
                }
                self.report.acked += 1;
                self.backoff = FIRST_BACKOFF;
                if v["duplicate"] == true {
                    self.report.duplicates += 1;
                }
                self.last_progress = Instant::now();
                self.send_window().await;
                Ok(())
            }
            Some("error") => {
                let code = v["code"].as_str().unwrap_or("").to_string();
                let message = v["message"].as_str().unwrap_or("").to_string();
                if TRANSIENT.contains(&code.as_str()) {
                    tracing::warn!(%code, %message, "the server refused for now; will resend");
                    self.disconnect(&code);
                    Ok(())
                } else {
                    Err(PushError::Refused { code, message })
                }
            }
            _ => Ok(()),
        }
    }

    pub(super) async fn close(&mut self) {
        if let Some(mut ws) = self.ws.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        }
    }
}
