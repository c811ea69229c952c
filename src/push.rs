//! `babelcast push`: publishes a text stream (a CART writer's text output, an ASR pipe) to a
//! channel's publish WebSocket. Text is sent as partials while it arrives (at most one per
//! `partial_interval`), each line break commits a final with a client id, backspace and delete
//! correct the line in progress. Finals stay queued until acked; after a reconnect every
//! unacked final is sent again with its id, and the server acks a line it already stored with
//! its original seq (`duplicate: true`), so nothing is lost or doubled across reconnects.
//!
//! At most [`WINDOW`] finals are in flight on a connection and at most [`MAX_UNACKED`] are
//! queued (reading the input pauses beyond that): memory stays bounded however long the
//! server is away.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::formats::line::LineBuffer;

pub mod audio;
mod connection;
mod pusher;

use connection::{connect, next_msg, ConnectError};
use pusher::Pusher;

/// Finals sent but not yet acked on one connection (below the server's default
/// `limits.publisher_in_flight` of 256, so the server never stops reading us).
pub const WINDOW: usize = 64;
/// Unacked finals kept while the server is away; reading the input pauses beyond this.
pub const MAX_UNACKED: usize = 10_000;
/// Default shortest time between two partials.
pub const PARTIAL_INTERVAL: Duration = Duration::from_millis(150);
/// Default time to wait for the last acks once the input has ended.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// First wait before reconnecting; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Bytes read from the input at a time.
const READ_CHUNK: usize = 4096;
/// Error codes after which the same finals are sent again later.
const TRANSIENT: [&str; 5] = [
    "storage_unavailable",
    "cluster_unavailable",
    "shutting_down",
    "too_many_in_flight",
    "not_on_air",
];

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// The channel's publish URL (`ws://…/v1/events/E/channels/C/publish`).
    pub url: String,
    /// The channel's publish token (sent as `Authorization: Bearer`).
    pub token: String,
    /// Client ids are `{id_prefix}-{n}`. It must be new for every run: the server treats a
    /// known id as a retry and stores nothing.
    pub id_prefix: String,
    /// Shortest time between two partials.
    pub partial_interval: Duration,
    /// Longest line, in characters: a longer one is committed at a space (keep it at or
    /// below the server's `limits.max_caption_chars`).
    pub max_chars: usize,
    /// Time to wait for the last acks once the input has ended.
    pub drain_timeout: Duration,
    /// The publisher name booth partners see (`?name=`), the same across reconnects so the
    /// booth knows it is the same publisher coming back. Default: the id prefix.
    pub name: Option<String>,
}

impl PushOptions {
    /// Options with the defaults and a random id prefix.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> PushOptions {
        PushOptions {
            url: url.into(),
            token: token.into(),
            id_prefix: default_id_prefix(),
            partial_interval: PARTIAL_INTERVAL,
            max_chars: 4000,
            drain_timeout: DRAIN_TIMEOUT,
            name: None,
        }
    }

    /// The URL connected to: the publish URL with `name=` added unless it has one.
    pub fn connect_url(&self) -> String {
        let has_name = self
            .url
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("name=")));
        if has_name {
            self.url.clone()
        } else {
            let name = self.name.as_deref().unwrap_or(&self.id_prefix);
            let name: String = name.chars().take(crate::protocol::MAX_NAME_CHARS).collect();
            crate::formats::with_params(&self.url, &[("name", &name)])
        }
    }
}

/// A fresh id prefix: `push-` and random characters.
pub fn default_id_prefix() -> String {
    format!("push-{}", &crate::secret::random_token()[..12])
}

/// What a push did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Lines committed from the input.
    pub lines: u64,
    /// Acks received for them (including duplicates).
    pub acked: u64,
    /// Acks saying the line had already been stored (a resend after a reconnect).
    pub duplicates: u64,
    /// Finals sent again after a reconnect.
    pub resent: u64,
    /// Connections made.
    pub connections: u64,
    /// Partials sent.
    pub partials: u64,
}

/// Why a push stopped before every line was acked.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("invalid options: {0}")]
    Options(String),
    #[error("reading the input: {0}")]
    Input(#[source] std::io::Error),
    #[error("the server refused the connection: {0}")]
    Rejected(String),
    #[error("the server refused a message: {code}: {message}")]
    Refused { code: String, message: String },
    #[error("{unacked} lines were not acknowledged within {timeout:?} after the input ended")]
    Unacked { unacked: usize, timeout: Duration },
    #[error("cancelled with {0} lines not acknowledged")]
    Cancelled(usize),
}

/// Appends `chunk` to the text decoded so far, keeping an incomplete UTF-8 sequence for the
/// next chunk and replacing invalid bytes with U+FFFD.
fn decode(carry: &mut Vec<u8>, chunk: &[u8], out: &mut String) {
    carry.extend_from_slice(chunk);
    loop {
        match std::str::from_utf8(carry) {
            Ok(s) => {
                out.push_str(s);
                carry.clear();
                return;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                out.push_str(&String::from_utf8_lossy(&carry[..valid]));
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        carry.drain(..valid + n);
                    }
                    None => {
                        carry.drain(..valid);
                        return;
                    }
                }
            }
        }
    }
}

/// Pushes `input` until it ends and every line is acked (or `cancel` fires).
pub async fn run<R: AsyncRead + Unpin>(
    opts: PushOptions,
    mut input: R,
    cancel: CancellationToken,
) -> Result<PushReport, PushError> {
    if opts.id_prefix.is_empty() || opts.id_prefix.chars().count() > 100 {
        return Err(PushError::Options(
            "id prefix must be 1-100 characters".into(),
        ));
    }
    if opts.max_chars == 0 {
        return Err(PushError::Options("max chars must be at least 1".into()));
    }
    let mut p = Pusher {
        opts,
        ws: None,
        unacked: VecDeque::new(),
        in_flight: 0,
        next_id: 1,
        line: LineBuffer::default(),
        shown: String::new(),
        last_partial: None,
        partial_due: None,
        report: PushReport::default(),
        last_progress: Instant::now(),
        backoff: FIRST_BACKOFF,
        retry_at: Instant::now(),
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut carry = Vec::new();
    let mut eof = false;
    loop {
        if eof && p.unacked.is_empty() {
            p.close().await;
            return Ok(p.report);
        }
        if p.ws.is_none() && Instant::now() >= p.retry_at {
            match connect(&p.opts).await {
                Ok(ws) => {
                    tracing::info!(unacked = p.unacked.len(), "connected");
                    p.ws = Some(ws);
                    p.report.connections += 1;
                    if p.unacked.is_empty() {
                        p.backoff = FIRST_BACKOFF;
                    }
                    p.last_progress = Instant::now();
                    p.send_window().await;
                    p.send_partial().await;
                }
                Err(ConnectError::Fatal(e)) => return Err(PushError::Rejected(e)),
                Err(ConnectError::Transient(e)) => {
                    tracing::warn!(error = %e, retry_in_ms = p.backoff.as_millis() as u64, "cannot connect");
                    p.retry_at = Instant::now() + p.backoff;
                    p.backoff = (p.backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        }
        let drain_deadline = p.last_progress + p.opts.drain_timeout;
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                let n = p.unacked.len();
                p.close().await;
                return if n == 0 { Ok(p.report) } else { Err(PushError::Cancelled(n)) };
            }
            msg = next_msg(&mut p.ws) => match msg {
                Some(Ok(Message::Text(t))) => p.message(&t).await?,
                Some(Ok(Message::Close(frame))) => {
                    let why = frame.map(|f| format!("closed {}: {}", u16::from(f.code), f.reason)).unwrap_or_else(|| "closed".into());
                    p.disconnect(&why);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    p.disconnect(&e.to_string());
                }
                None => {
                    p.disconnect("connection ended");
                }
            },
            n = input.read(&mut buf), if !eof && p.unacked.len() < MAX_UNACKED => {
                let n = n.map_err(PushError::Input)?;
                let mut text = String::new();
                if n == 0 {
                    eof = true;
                    if !carry.is_empty() {
                        text.push_str(&String::from_utf8_lossy(&carry));
                        carry.clear();
                    }
                    // The input ended: the line in progress is a line too.
                    text.push('\n');
                    p.last_progress = Instant::now();
                } else {
                    decode(&mut carry, &buf[..n], &mut text);
                }
                p.input(&text).await;
            }
            _ = tokio::time::sleep_until(p.partial_due.unwrap_or_else(Instant::now)), if p.partial_due.is_some() && p.ws.is_some() => {
                p.send_partial().await;
            }
            _ = tokio::time::sleep_until(p.retry_at), if p.ws.is_none() => {}
            _ = tokio::time::sleep_until(drain_deadline), if eof => {
                if p.last_progress + p.opts.drain_timeout <= Instant::now() {
                    let unacked = p.unacked.len();
                    p.close().await;
                    return Err(PushError::Unacked { unacked, timeout: p.opts.drain_timeout });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_utf8_split_across_chunks() {
        let bytes = "héllo 你好\n".as_bytes();
        for split in 0..bytes.len() {
            let mut carry = Vec::new();
            let mut out = String::new();
            decode(&mut carry, &bytes[..split], &mut out);
            decode(&mut carry, &bytes[split..], &mut out);
            assert_eq!(out, "héllo 你好\n");
            assert!(carry.is_empty());
        }
        let mut carry = Vec::new();
        let mut out = String::new();
        decode(&mut carry, b"a\xffb", &mut out);
        assert_eq!(out, "a\u{FFFD}b");
    }

    #[test]
    fn the_name_is_added_to_the_url() {
        let mut o = PushOptions::new("ws://h/v1/events/e/channels/c/publish", "t");
        o.id_prefix = "p1".into();
        assert_eq!(
            o.connect_url(),
            "ws://h/v1/events/e/channels/c/publish?name=p1"
        );
        o.name = Some("Booth 2 (CART)".into());
        assert_eq!(
            o.connect_url(),
            "ws://h/v1/events/e/channels/c/publish?name=Booth%202%20%28CART%29"
        );
        o.url = "ws://h/p?token=x&name=Ann".into();
        assert_eq!(o.connect_url(), "ws://h/p?token=x&name=Ann");
    }

    #[test]
    fn default_prefixes_differ() {
        assert_ne!(default_id_prefix(), default_id_prefix());
        assert!(default_id_prefix().starts_with("push-"));
    }
}
