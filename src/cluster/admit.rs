//! Publisher messages in cluster mode. The same validation as on a single node
//! ([`ingest`](crate::ingest)), then the air is asked of the stream instead of decided by this
//! node's booth: a change of the air is a [`Claim`] the channel's sequencer orders, and a line
//! or edit carries its author, so the sequencer stores it only if its author holds the air at
//! that point of the stream. The local booth (a mirror of the stream) only refuses early what
//! the stream would refuse too, so a standby partner hears `not_on_air` at once.
//!
//! A node cut off from the cluster refuses everything at once with `cluster_unavailable`.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::air::{self, Claim, RESUME, TAKE, TIMEOUT};
use super::sequencer::Job;
use super::wire::Holder;
use super::{booth, Link, Node};
use crate::booth::Takeover;
use crate::channel::Channel;
use crate::ingest::{self, Admitted, Ingest, Publisher};
use crate::protocol::{ClientMsg, ErrorCode, Refusal};
use crate::store::{Ack, Append, Editor, Request};

/// The answer to a claim: whether the air changed, or why not.
type ClaimReply = oneshot::Receiver<Result<bool, Refusal>>;

impl Node {
    /// This node's publisher as the stream names it.
    fn holder(&self, p: Publisher<'_>) -> Holder {
        Holder {
            node: self.id.clone(),
            id: p.id,
            name: p.name.to_string(),
            cred: p.credential,
        }
    }

    /// Asks the channel's sequencer to order a change of the air; the receiver resolves with
    /// whether the air changed (drop it when the answer does not matter).
    pub(super) async fn claim(&self, link: &Link, claim: Claim) -> ClaimReply {
        let (reply, rx) = oneshot::channel();
        let job = Job::Air {
            claim,
            reply: Some(reply),
            at: Instant::now(),
        };
        if let Err(e) = link.queue.send(job).await {
            e.0.refuse(Refusal::shutting_down());
        }
        rx
    }

    /// Submits a line or edit to the channel's sequencer, with its booth author.
    async fn submit(
        &self,
        channel: &Arc<Channel>,
        link: &Link,
        append: Append,
        partial_gen: Option<u64>,
        by: Option<Holder>,
    ) -> oneshot::Receiver<Result<Ack, Refusal>> {
        let (reply, rx) = oneshot::channel();
        let req = Request {
            channel: channel.clone(),
            append,
            ts: crate::clock::now_ms(),
            partial_gen,
            reply,
        };
        let job = Job::Store {
            req,
            by,
            at: Instant::now(),
        };
        if let Err(e) = link.queue.send(job).await {
            e.0.refuse(Refusal::shutting_down());
        }
        rx
    }

    /// A booth publisher connected: it comes on air if nobody is, or if it is the person on
    /// air coming back on a new connection (say after their node died): the air follows at
    /// once, without waiting for the old connection or node to be declared gone.
    pub(super) async fn joined(&self, channel: &Arc<Channel>, p: Publisher<'_>) {
        let Some(link) = self.link_of(channel) else {
            return;
        };
        let link = &link;
        if !self.in_cluster() {
            return;
        }
        let who = self.holder(p);
        let on_air = link.applied.borrow().air.on.clone();
        let over = match on_air {
            None => None,
            Some(h) if h.id != who.id && h.same_person(&who) => Some(h.id),
            Some(_) => return,
        };
        let reason = if over.is_some() { RESUME } else { TAKE };
        drop(self.claim(link, Claim::Take { who, over, reason }).await);
    }

    /// Validates and applies one publisher message in cluster mode (see the module doc).
    pub(super) async fn admit(
        &self,
        ingest: &Ingest,
        channel: &Arc<Channel>,
        msg: ClientMsg,
        from: Option<Publisher<'_>>,
    ) -> Result<Admitted, Refusal> {
        let Some(link) = self.link_of(channel) else {
            return Err(Refusal::new(
                ErrorCode::StorageUnavailable,
                "this channel is not part of the cluster; nothing was stored",
            ));
        };
        let link = &link;
        let max = ingest.max_caption_chars();
        match &msg {
            ClientMsg::Partial { text } => ingest::check_text(text, max, true)?,
            ClientMsg::Final { text, id } => {
                ingest::check_text(text, max, false)?;
                ingest::check_id(id.as_ref())?;
            }
            ClientMsg::Edit { of, text } => {
                ingest::check_text(text, max, false)?;
                if *of == 0 || *of > channel.last_seq() {
                    return Err(Refusal::new(
                        ErrorCode::UnknownSeq,
                        format!("no committed line with seq {of} in this channel"),
                    ));
                }
            }
            ClientMsg::FollowSource { .. }
            | ClientMsg::Feedback { .. }
            | ClientMsg::Audio { .. } => {
                return Err(Refusal::new(
                    ErrorCode::NotAllowed,
                    "this message is not accepted here",
                ))
            }
            ClientMsg::Take
            | ClientMsg::HandoverRequest
            | ClientMsg::HandoverAccept
            | ClientMsg::Release => {
                ingest::publisher(from)?;
            }
        }
        if !self.in_cluster() {
            return Err(Refusal::cluster_unavailable());
        }
        let me = from.map(|p| self.holder(p));
        let booth_publisher = || ingest::publisher(from).map(|p| self.holder(p));
        match msg {
            ClientMsg::Take => self.take(link, booth_publisher()?).await?,
            ClientMsg::HandoverRequest => self.request(link, booth_publisher()?).await?,
            ClientMsg::HandoverAccept => self.accept(link, booth_publisher()?).await?,
            ClientMsg::Release => self.release(link, booth_publisher()?).await?,
            ClientMsg::Partial { text } => {
                self.may_speak(link, me.as_ref(), true).await?;
                channel.set_partial(&text);
                self.relay_partial(channel, &text).await;
                return Ok(Admitted::Partial);
            }
            ClientMsg::Final { text, id } => {
                self.may_speak(link, me.as_ref(), false).await?;
                let author = from.map(|p| p.name.to_string());
                let append = ingest::line(channel, text, id, author);
                let gen = channel.partial_gen();
                let rx = self.submit(channel, link, append, Some(gen), me).await;
                return Ok(Admitted::Pending(rx));
            }
            ClientMsg::Edit { of, text } => {
                if me.is_none() {
                    self.may_speak(link, None, false).await?;
                }
                // Whether the editor is on air is decided at the edit's place in the stream.
                let editor = from.map(|p| Editor {
                    name: p.name.to_string(),
                    on_air: false,
                });
                let append = Append::Edit { of, text, editor };
                let rx = self.submit(channel, link, append, None, me).await;
                return Ok(Admitted::Pending(rx));
            }
            ClientMsg::FollowSource { .. }
            | ClientMsg::Feedback { .. }
            | ClientMsg::Audio { .. } => {
                unreachable!("refused above")
            }
        }
        channel.refresh_status();
        Ok(Admitted::Control)
    }

    /// Whether `me` may send a partial or final now, as far as this node can tell (the stream
    /// has the last word on finals). A booth publisher takes a free channel by speaking: for a
    /// partial (not ordered by the stream) the take is asked of the stream first.
    async fn may_speak(
        &self,
        link: &Link,
        me: Option<&Holder>,
        partial: bool,
    ) -> Result<(), Refusal> {
        let booth = &link.channel.booth;
        if me.is_some_and(|p| booth.is_on_air(p.id)) {
            booth.mark_active();
            return Ok(());
        }
        let on_air = booth.shared().on_air;
        match (me, on_air) {
            (Some(p), Some((id, _))) if id == p.id => {
                booth.mark_active();
                Ok(())
            }
            (Some(p), None) if partial => {
                let claim = Claim::Take {
                    who: p.clone(),
                    over: None,
                    reason: TAKE,
                };
                match self.claim(link, claim).await.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(r)) if r.code == ErrorCode::HandoverRefused => {
                        Err(air::standby(&booth.on_air_name().unwrap_or_default()))
                    }
                    Ok(Err(r)) => Err(r),
                    Err(_) => Err(Refusal::shutting_down()),
                }
            }
            (Some(_), None) => Ok(()),
            (Some(_), Some((_, name))) => Err(air::standby(&name)),
            (None, None) => Ok(()),
            (None, Some(_)) => Err(Refusal::new(
                ErrorCode::NotOnAir,
                "a booth publisher is on air on this channel; publish from the booth",
            )),
        }
    }

    /// Waits for a claim's answer.
    async fn ordered(&self, link: &Link, claim: Claim) -> Result<bool, Refusal> {
        self.claim(link, claim)
            .await
            .await
            .unwrap_or_else(|_| Err(Refusal::shutting_down()))
    }

    /// `take`: the booth rules as this node sees the air, then the stream's word.
    async fn take(&self, link: &Link, me: Holder) -> Result<(), Refusal> {
        let on_air = link.applied.borrow().air.on.clone();
        let (over, reason) = match on_air {
            Some(h) if h.id != me.id && h.same_person(&me) => (Some(h.id), RESUME),
            _ => match link.channel.booth.may_take(me.id)? {
                Takeover::Already => return Ok(()),
                Takeover::Free => (None, TAKE),
                Takeover::From(id) => (Some(id), TIMEOUT),
            },
        };
        let claim = Claim::Take {
            who: me,
            over,
            reason,
        };
        self.ordered(link, claim).await.map(drop)
    }

    /// `handover_request`: written to the booth bucket for the on-air partner to see.
    async fn request(&self, link: &Link, me: Holder) -> Result<(), Refusal> {
        match link.channel.booth.shared().on_air {
            Some((id, _)) if id == me.id => Err(Refusal::new(
                ErrorCode::HandoverRefused,
                "you are already on air",
            )),
            Some(_) => booth::set_request(self, link, |_| true, Some(me)).await,
            None => Err(Refusal::new(
                ErrorCode::HandoverRefused,
                "nobody is on air: send take",
            )),
        }
    }

    /// `handover_accept`: the requester is on air, in the stream's order.
    async fn accept(&self, link: &Link, me: Holder) -> Result<(), Refusal> {
        if link
            .channel
            .booth
            .shared()
            .on_air
            .is_none_or(|(id, _)| id != me.id)
        {
            return Err(Refusal::new(
                ErrorCode::NotOnAir,
                "only the on-air publisher can accept a handover",
            ));
        }
        let Some(to) = link.booth_entry.borrow().1.request.clone() else {
            return Err(Refusal::new(
                ErrorCode::HandoverRefused,
                "no handover was requested",
            ));
        };
        let claim = Claim::Accept {
            by: me.id,
            to: to.clone(),
        };
        self.ordered(link, claim).await?;
        let _ = booth::set_request(self, link, |r| r.as_ref() == Some(&to), None).await;
        Ok(())
    }

    /// `release`: off air, in the stream's order.
    async fn release(&self, link: &Link, me: Holder) -> Result<(), Refusal> {
        let not_on_air = || Refusal::new(ErrorCode::NotOnAir, "you are not on air");
        if link
            .channel
            .booth
            .shared()
            .on_air
            .is_none_or(|(id, _)| id != me.id)
        {
            return Err(not_on_air());
        }
        match self.ordered(link, Claim::Release { id: me.id }).await? {
            true => Ok(()),
            false => Err(not_on_air()),
        }
    }
}
