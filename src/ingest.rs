//! Admission of publisher messages, shared by every way of publishing (WebSocket, HTTP, the
//! caption formats, demo): validation with specific error codes, the booth rules, language
//! identification, and hand-off to the store. [`Ingest`] is the context every publishing path
//! receives; [`formats`] keeps the per-channel state of the Zoom, YouTube and StreamText HTTP
//! formats, [`ebutt`] that of EBU-TT Live sequences; [`idle`] commits their lines in progress
//! when a stream goes quiet or the server stops; `lifecycle` commits them when an event ends
//! and forgets them when transcripts, a channel or an event are deleted; [`stats`] counts
//! both for `/metrics`.

pub mod audio;
pub mod ebutt;
pub mod formats;
pub mod idle;
mod lifecycle;
pub mod stats;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::sync::oneshot;

use crate::booth::Handover;
use crate::channel::Channel;
use crate::clock::now_ms;
use crate::langid;
use crate::protocol::{ClientMsg, ErrorCode, Refusal, MAX_CLIENT_ID_CHARS};
use crate::store::{Ack, Append, Editor, Store, StoreError};
use ebutt::EbuttStreams;
use formats::FormatStreams;

/// In a cluster, who is on air is decided in the stream's order, not by this node's booth:
/// the cluster admits every publisher message (and relays partials to the other nodes).
/// Implemented by the cluster's node.
pub trait Arbiter: Send + Sync {
    /// Validates and applies one message, as [`Ingest::admit`] does on a single node.
    fn admit<'a>(
        &'a self,
        ingest: &'a Ingest,
        channel: &'a Arc<Channel>,
        msg: ClientMsg,
        from: Option<Publisher<'a>>,
    ) -> Pin<Box<dyn Future<Output = Result<Admitted, Refusal>> + Send + 'a>>;

    /// A booth publisher connected to `channel` (it may come on air at once).
    fn joined<'a>(
        &'a self,
        channel: &'a Arc<Channel>,
        p: Publisher<'a>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

    /// Sends the channel's new line in progress to the other nodes; failures are the
    /// arbiter's to log.
    fn relay<'a>(
        &'a self,
        channel: &'a Arc<Channel>,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

/// Finds a channel by event and channel id: the registry's lookup, handed down by the server
/// so the idle committer can reach the channels of streams restored from the store.
pub type ChannelLookup = Arc<dyn Fn(&str, &str) -> Option<Arc<Channel>> + Send + Sync>;

/// What every way of publishing needs to admit a message: the store, the caption limit, the
/// caption formats' and EBU-TT Live streams, and in a cluster the [`Arbiter`]. Built once by
/// the server and handed to sessions and routes.
pub struct Ingest {
    store: Arc<Store>,
    max_caption_chars: usize,
    /// State of the Zoom, YouTube and StreamText HTTP ingest formats, per channel.
    pub formats: FormatStreams,
    /// State of the EBU-TT Live sequences published over WebSocket, per channel.
    pub ebutt: EbuttStreams,
    /// The idle committer's settings, wake-up and counters (`[ingest]`).
    pub idle: idle::Idle,
    arbiter: OnceLock<Arc<dyn Arbiter>>,
    channels: ChannelLookup,
    /// `[audio]`: packet size and rate (see [`audio`]).
    audio: crate::config::AudioConfig,
    audio_relay: OnceLock<Arc<dyn audio::AudioRelay>>,
    recorder: OnceLock<Arc<crate::recording::Recorder>>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("max_caption_chars", &self.max_caption_chars)
            .field("arbiter", &self.arbiter.get().is_some())
            .finish_non_exhaustive()
    }
}

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

pub(crate) fn check_text(text: &str, max_chars: usize, allow_empty: bool) -> Result<(), Refusal> {
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

/// Whether a publisher outside the booth (HTTP ingest, caption formats) may publish now:
/// refused with `not_on_air` while a booth publisher is on air.
pub fn anonymous_may_publish(channel: &Channel) -> Result<(), Refusal> {
    if channel.booth.any_on_air() {
        return Err(Refusal::new(
            ErrorCode::NotOnAir,
            "a booth publisher is on air on this channel; publish from the booth",
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
    /// Which of the channel's publish tokens it connected with (its index; `None` for the
    /// demo): with the name, who the person is (in a cluster the same person may resume the
    /// air from another node).
    pub credential: Option<u32>,
}

/// Refuses a final's client id longer than [`MAX_CLIENT_ID_CHARS`].
pub(crate) fn check_id(id: Option<&String>) -> Result<(), Refusal> {
    if id.is_some_and(|id| id.chars().count() > MAX_CLIENT_ID_CHARS) {
        return Err(Refusal::new(
            ErrorCode::IdTooLong,
            format!("id is longer than {MAX_CLIENT_ID_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A final as the store takes it: its detected language, and the channel's declared one when
/// the line is confidently in another language.
pub(crate) fn line(
    channel: &Channel,
    text: String,
    id: Option<String>,
    author: Option<String>,
) -> Append {
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
    Append::Line {
        text,
        lang: d.lang,
        expected_lang: d.expected,
        client_id: id,
        author,
    }
}

impl Ingest {
    /// The context over `store`, with the caption formats' and EBU-TT Live streams restored
    /// from it (so retries and resends stay idempotent across restarts).
    /// Lines in progress are committed after `idle_commit` of silence.
    pub fn new(
        store: Arc<Store>,
        channels: ChannelLookup,
        max_caption_chars: usize,
        idle_commit: std::time::Duration,
    ) -> Result<Ingest, StoreError> {
        let formats = FormatStreams::default();
        formats.restore(store.format_states()?, idle_commit);
        let ebutt = EbuttStreams::default();
        ebutt.restore(store.ebutt_states()?, idle_commit);
        Ok(Ingest {
            store,
            max_caption_chars,
            formats,
            ebutt,
            idle: idle::Idle::new(idle_commit),
            arbiter: OnceLock::new(),
            channels,
            audio: Default::default(),
            audio_relay: OnceLock::new(),
            recorder: OnceLock::new(),
        })
    }

    /// The context with `[audio]`'s packet size and rate.
    pub fn with_audio(mut self, audio: crate::config::AudioConfig) -> Ingest {
        self.audio = audio;
        self
    }

    /// `[audio]` as configured.
    pub fn audio_config(&self) -> &crate::config::AudioConfig {
        &self.audio
    }

    /// Cluster mode: every message is admitted by `arbiter` from now on.
    pub fn set_arbiter(&self, arbiter: Arc<dyn Arbiter>) {
        if self.arbiter.set(arbiter).is_err() {
            tracing::warn!("arbiter set twice; keeping the first");
        }
    }

    /// A booth publisher connected to `channel`: in a cluster it may come on air at once
    /// (see [`Arbiter::joined`]); on a single node joining already did that.
    pub async fn joined(&self, channel: &Arc<Channel>, p: Publisher<'_>) {
        if let Some(a) = self.arbiter.get() {
            a.joined(channel, p).await;
        }
    }

    /// The channel `channel` of `event`, if it exists.
    pub fn channel(&self, event: &str, channel: &str) -> Option<Arc<Channel>> {
        (self.channels)(event, channel)
    }

    /// The store lines are handed to.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The longest caption text, in characters (`limits.max_caption_chars`).
    pub fn max_caption_chars(&self) -> usize {
        self.max_caption_chars
    }

    /// Stores a handover event; its seq orders it among the lines. Failures are logged.
    pub async fn store_handover(&self, channel: &Arc<Channel>, h: Option<Handover>) {
        if let Some(h) = h {
            tracing::info!(event = %channel.info.event, channel = %channel.info.id, from = ?h.from, to = ?h.to, reason = %h.reason, "handover");
            // The ack is not needed: the event reaches listeners once stored.
            let ack = self
                .store
                .submit(channel.clone(), Append::Handover(h), now_ms(), None)
                .await;
            drop(ack);
        }
    }

    /// A publisher whose last partial had generation `gen` left: that partial, if listeners
    /// still see it, is cleared (here and, in a cluster, on the other nodes), so no stale line
    /// in progress stays on phones.
    pub async fn clear_partial(&self, channel: &Arc<Channel>, gen: u64) {
        if channel.clear_partial_if(gen) {
            if let Some(a) = self.arbiter.get() {
                a.relay(channel, "").await;
            }
        }
    }

    /// Validates and applies one publisher message to `channel`. `from` is the booth
    /// publisher who sent it (booth rules apply), or `None` for an anonymous publisher (HTTP
    /// and the caption formats), refused with `not_on_air` while a booth publisher is on air.
    pub async fn admit(
        &self,
        channel: &Arc<Channel>,
        msg: ClientMsg,
        from: Option<Publisher<'_>>,
    ) -> Result<Admitted, Refusal> {
        // Nothing is published before the event starts or after it ends.
        if let Some(r) = channel.life.refusal() {
            return Err(r);
        }
        // In a cluster the air is the cluster's to decide, in the stream's order.
        if let Some(a) = self.arbiter.get() {
            return a.admit(self, channel, msg, from).await;
        }
        let max = self.max_caption_chars;
        let listeners = channel.audience();
        // Partials and finals need the air: a booth publisher takes an idle channel by speaking.
        let on_air = |channel: &Channel| -> Result<Option<Handover>, Refusal> {
            match from {
                Some(p) => channel.booth.claim_air(p.id, listeners),
                None => anonymous_may_publish(channel).map(|()| None),
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
            ClientMsg::FollowSource { .. }
            | ClientMsg::Feedback { .. }
            | ClientMsg::Audio { .. } => {
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
                check_id(id.as_ref())?;
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
            self.store_handover(channel, handover).await;
            channel.refresh_status();
            return Ok(Admitted::Control);
        }
        self.store_handover(channel, handover).await;
        match msg {
            ClientMsg::Partial { text } => {
                channel.set_partial(&text);
                Ok(Admitted::Partial)
            }
            ClientMsg::Final { text, id } => {
                let append = line(channel, text, id, from.map(|p| p.name.to_string()));
                let gen = channel.partial_gen();
                let rx = self
                    .store
                    .submit(channel.clone(), append, now_ms(), Some(gen))
                    .await;
                Ok(Admitted::Pending(rx))
            }
            ClientMsg::Edit { of, text } => {
                let editor = from.map(|p| Editor {
                    name: p.name.to_string(),
                    on_air: channel.booth.is_on_air(p.id),
                });
                let rx = self
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
}

pub(crate) fn publisher(from: Option<Publisher<'_>>) -> Result<Publisher<'_>, Refusal> {
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
