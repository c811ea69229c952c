//! Admission of publisher messages, shared by every way of publishing (WebSocket, HTTP, demo):
//! validation with specific error codes, language identification, and hand-off to the store.
//! [`formats`] keeps the per-channel state of the Zoom, YouTube and StreamText HTTP formats,
//! [`ebutt`] that of EBU-TT Live sequences.

pub mod ebutt;
pub mod formats;

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::booth::Handover;
use crate::channel::Channel;
use crate::clock::now_ms;
use crate::hub::Hub;
use crate::langid;
use crate::protocol::{ClientMsg, ErrorCode, Refusal, MAX_CLIENT_ID_CHARS};
use crate::store::{Ack, Append, Editor};

/// What an admitted message turned into.
#[derive(Debug)]
pub enum Admitted {
    /// A partial was applied at once (partials are not stored and not acked).
    Partial,
    /// A final or edit is on its way to the store; the receiver resolves with its ack.
    Pending(oneshot::Receiver<Result<Ack, Refusal>>),
    /// A booth control message (take, release, handover) was applied.
    Control,
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

/// A booth publisher (a WebSocket publisher or the demo) as the booth knows it.
#[derive(Debug, Clone, Copy)]
pub struct Publisher<'a> {
    /// The booth id from [`Channel::publisher_join`].
    pub id: u64,
    /// Display name (`?name=` on the publish URL).
    pub name: &'a str,
}

/// Validates and applies one message from an anonymous publisher (HTTP ingest). Refused with
/// `not_on_air` while a booth publisher is on air on the channel.
pub async fn admit(hub: &Hub, channel: &Arc<Channel>, msg: ClientMsg) -> Result<Admitted, Refusal> {
    admit_from(hub, channel, msg, None).await
}

/// Stores a handover event; its seq orders it among the lines. Failures are logged.
async fn store_handover(hub: &Hub, channel: &Arc<Channel>, h: Option<Handover>) {
    if let Some(h) = h {
        tracing::info!(event = %channel.info.event, channel = %channel.info.id, from = ?h.from, to = ?h.to, reason = %h.reason, "handover");
        // The ack is not needed: the event reaches listeners once stored.
        let ack = hub
            .store
            .submit(channel.clone(), Append::Handover(h), now_ms(), None)
            .await;
        drop(ack);
    }
}

/// Validates and applies one publisher message to `channel`, applying the booth rules when
/// `from` is a booth publisher.
pub async fn admit_from(
    hub: &Hub,
    channel: &Arc<Channel>,
    msg: ClientMsg,
    from: Option<Publisher<'_>>,
) -> Result<Admitted, Refusal> {
    let max = hub.limits.max_caption_chars;
    let listeners = channel.audience();
    // Partials and finals need the air: a booth publisher takes an idle channel by speaking.
    let on_air = |channel: &Channel| -> Result<Option<Handover>, Refusal> {
        match from {
            Some(p) => channel.booth.admit(p.id, listeners),
            None if channel.booth.any_on_air() => Err(Refusal::new(
                ErrorCode::NotOnAir,
                "a booth publisher is on air on this channel; publish from the booth",
            )),
            None => Ok(None),
        }
    };
    let handover = match &msg {
        ClientMsg::Take => channel.booth.take(publisher(from)?.id, listeners)?,
        ClientMsg::HandoverAccept => channel.booth.accept(publisher(from)?.id, listeners)?,
        ClientMsg::HandoverRequest => {
            channel.booth.request(publisher(from)?.id, listeners)?;
            None
        }
        ClientMsg::Release => {
            channel.booth.release(publisher(from)?.id, listeners)?;
            None
        }
        ClientMsg::FollowSource { .. } | ClientMsg::Feedback { .. } => {
            return Err(Refusal::new(
                ErrorCode::NotAllowed,
                "this message is not accepted here",
            ))
        }
        ClientMsg::Partial { text } => {
            check_text(text, max, true)?;
            on_air(channel)?
        }
        ClientMsg::Final { text, id } => {
            check_text(text, max, false)?;
            if id
                .as_ref()
                .is_some_and(|id| id.chars().count() > MAX_CLIENT_ID_CHARS)
            {
                return Err(Refusal::new(
                    ErrorCode::IdTooLong,
                    format!("id is longer than {MAX_CLIENT_ID_CHARS} characters"),
                ));
            }
            on_air(channel)?
        }
        ClientMsg::Edit { of, text } => {
            check_text(text, max, false)?;
            if *of == 0 || *of > channel.last_seq() {
                return Err(Refusal::new(
                    ErrorCode::UnknownSeq,
                    format!("no committed line with seq {of} in this channel"),
                ));
            }
            if from.is_none() {
                on_air(channel)?;
            }
            None
        }
    };
    if matches!(
        &msg,
        ClientMsg::Take
            | ClientMsg::HandoverAccept
            | ClientMsg::HandoverRequest
            | ClientMsg::Release
    ) {
        store_handover(hub, channel, handover).await;
        channel.refresh_status();
        return Ok(Admitted::Control);
    }
    store_handover(hub, channel, handover).await;
    match msg {
        ClientMsg::Partial { text } => {
            channel.set_partial(&text);
            if let Some(node) = hub.cluster.get() {
                node.relay_partial(channel, &text).await;
            }
            Ok(Admitted::Partial)
        }
        ClientMsg::Final { text, id } => {
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
                        author: from.map(|p| p.name.to_string()),
                    },
                    now_ms(),
                    Some(gen),
                )
                .await;
            Ok(Admitted::Pending(rx))
        }
        ClientMsg::Edit { of, text } => {
            let editor = from.map(|p| Editor {
                name: p.name.to_string(),
                on_air: channel.booth.is_on_air(p.id),
            });
            let rx = hub
                .store
                .submit(
                    channel.clone(),
                    Append::Edit { of, text, editor },
                    now_ms(),
                    None,
                )
                .await;
            Ok(Admitted::Pending(rx))
        }
        _ => Ok(Admitted::Control),
    }
}

fn publisher(from: Option<Publisher<'_>>) -> Result<Publisher<'_>, Refusal> {
    from.ok_or_else(|| {
        Refusal::new(
            ErrorCode::NotAllowed,
            "booth messages need a publisher WebSocket connection",
        )
    })
}

/// Waits for a pending store result, mapping a dropped writer to `shutting_down`.
pub async fn resolve(rx: oneshot::Receiver<Result<Ack, Refusal>>) -> Result<Ack, Refusal> {
    rx.await.unwrap_or_else(|_| Err(Refusal::shutting_down()))
}
