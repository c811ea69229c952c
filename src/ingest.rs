//! Admission of publisher messages, shared by every way of publishing (WebSocket, HTTP, demo):
//! validation with specific error codes, language identification, and hand-off to the store.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::channel::Channel;
use crate::hub::Hub;
use crate::langid;
use crate::protocol::{ClientMsg, ErrorCode, Refusal, MAX_CLIENT_ID_CHARS};
use crate::store::{Ack, Append};

/// What an admitted message turned into.
#[derive(Debug)]
pub enum Admitted {
    /// A partial was applied at once (partials are not stored and not acked).
    Partial,
    /// A final or edit is on its way to the store; the receiver resolves with its ack.
    Pending(oneshot::Receiver<Result<Ack, Refusal>>),
}

/// Current wall-clock time in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn check_text(text: &str, max_chars: usize, allow_empty: bool) -> Result<(), Refusal> {
    if !allow_empty && text.trim().is_empty() {
        return Err(Refusal::new(ErrorCode::EmptyText, "text is empty"));
    }
    // Cheap byte bound first: a char is at least one byte.
    if text.len() > max_chars && text.chars().count() > max_chars {
        return Err(Refusal::new(
            ErrorCode::TextTooLong,
            format!("text is longer than {max_chars} characters"),
        ));
    }
    Ok(())
}

/// Validates and applies one publisher message to `channel`.
pub async fn admit(hub: &Hub, channel: &Arc<Channel>, msg: ClientMsg) -> Result<Admitted, Refusal> {
    let max = hub.limits.max_caption_chars;
    match msg {
        ClientMsg::Partial { text } => {
            check_text(&text, max, true)?;
            channel.set_partial(&text);
            Ok(Admitted::Partial)
        }
        ClientMsg::Final { text, id } => {
            check_text(&text, max, false)?;
            if id
                .as_ref()
                .is_some_and(|id| id.chars().count() > MAX_CLIENT_ID_CHARS)
            {
                return Err(Refusal::new(
                    ErrorCode::IdTooLong,
                    format!("id is longer than {MAX_CLIENT_ID_CHARS} characters"),
                ));
            }
            let previous = channel.last_lang();
            let d = langid::check(&text, &channel.info.lang, previous.as_deref());
            if let Some(expected) = &d.expected {
                tracing::warn!(
                    event = %channel.info.event,
                    channel = %channel.info.id,
                    expected = %expected,
                    detected = %d.lang,
                    "line confidently detected as another language than the channel's"
                );
            }
            let gen = channel.partial_gen();
            let rx = hub
                .store
                .submit(
                    channel.clone(),
                    Append::Line {
                        text,
                        lang: d.lang,
                        expected_lang: d.expected,
                        client_id: id,
                    },
                    now_ms(),
                    Some(gen),
                )
                .await;
            Ok(Admitted::Pending(rx))
        }
        ClientMsg::Edit { of, text } => {
            check_text(&text, max, false)?;
            if of == 0 || of > channel.last_seq() {
                return Err(Refusal::new(
                    ErrorCode::UnknownSeq,
                    format!("no committed line with seq {of} in this channel"),
                ));
            }
            let rx = hub
                .store
                .submit(channel.clone(), Append::Edit { of, text }, now_ms(), None)
                .await;
            Ok(Admitted::Pending(rx))
        }
    }
}

/// Waits for a pending store result, mapping a dropped writer to `shutting_down`.
pub async fn resolve(rx: oneshot::Receiver<Result<Ack, Refusal>>) -> Result<Ack, Refusal> {
    rx.await.unwrap_or_else(|_| {
        Err(Refusal::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down; nothing was stored",
        ))
    })
}
