//! Sound across the nodes: every packet a node hears (the booth rule applied where the
//! publisher is connected) goes out on core NATS, `{prefix}.audio.{event}.{channel}`, and
//! every other node relays it to its own listeners ([`Ingest::remote_audio`]) and records it.
//! No persistence and no retries: a packet that misses its moment is worthless, so the
//! sender drops one it cannot queue at once ([`QUEUE`]) and nothing is ever replayed.
//!
//! A message is binary (50 a second per speaking channel), version 1:
//! `[1][node id length][node id][kind: 0 partner, 1 feed][source id: u64][ts ms: i64][Opus]`,
//! integers big-endian. Nodes skip their own messages.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{ClusterError, Node};
use crate::channel::{Channel, Packet, Source};
use crate::ingest::audio::AudioRelay;
use crate::ingest::Ingest;

/// Version byte of a message.
const VERSION: u8 = 1;
/// Packets waiting to be published (a few per channel); beyond it they are dropped.
pub const QUEUE: usize = 256;

/// This node's side of the sound: its subjects' prefix and its outgoing queue.
struct AudioLink {
    node: String,
    /// `{subject_prefix}.audio.`: a channel's subject is this, `{event}.{channel}`.
    prefix: String,
    out: mpsc::Sender<(String, Bytes)>,
}

impl AudioRelay for AudioLink {
    fn relay(&self, channel: &Arc<Channel>, source: Source, packet: &Packet) {
        // Channels made at run time have a subject too (ids hold no dot).
        let subject = format!("{}{}.{}", self.prefix, channel.info.event, channel.info.id);
        let opus = packet.opus();
        let (kind, id) = match source {
            Source::Partner(id) => (0u8, id),
            Source::Feed(id) => (1u8, id),
        };
        let mut m = BytesMut::with_capacity(19 + self.node.len() + opus.len());
        m.put_u8(VERSION);
        m.put_u8(self.node.len() as u8);
        m.put_slice(self.node.as_bytes());
        m.put_u8(kind);
        m.put_u64(id);
        m.put_i64(packet.header().ts_ms);
        m.put_slice(&opus);
        // Full: the packet is late already; drop it.
        let _ = self.out.try_send((subject, m.freeze()));
    }
}

/// A message from another node: `(node, source, ts, opus)`.
fn parse(m: &[u8]) -> Option<(&str, Source, i64, &[u8])> {
    let (&v, rest) = m.split_first()?;
    let (&n, rest) = rest.split_first()?;
    if v != VERSION || rest.len() < n as usize + 17 {
        return None;
    }
    let (node, rest) = rest.split_at(n as usize);
    let node = std::str::from_utf8(node).ok()?;
    let id = u64::from_be_bytes(rest[1..9].try_into().ok()?);
    let source = match rest[0] {
        0 => Source::Partner(id),
        1 => Source::Feed(id),
        _ => return None,
    };
    let ts = i64::from_be_bytes(rest[9..17].try_into().ok()?);
    Some((node, source, ts, &rest[17..]))
}

/// Subscribes to the other nodes' sound and starts relaying this node's: sets the ingest
/// context's audio relay and spawns the two tasks on the node's tracker.
pub(super) async fn start(node: &Arc<Node>, ingest: &Arc<Ingest>) -> Result<(), ClusterError> {
    let prefix = &node.cfg.subject_prefix;
    let sub = node
        .client
        .subscribe(format!("{prefix}.audio.>"))
        .await
        .map_err(|e| ClusterError::JetStream {
            what: "subscribing to sound".into(),
            message: e.to_string(),
        })?;
    let (out, rx) = mpsc::channel(QUEUE);
    ingest.set_audio_relay(Arc::new(AudioLink {
        node: node.id.clone(),
        prefix: format!("{prefix}.audio."),
        out,
    }));
    node.tracker.spawn(publish(node.clone(), rx));
    node.tracker
        .spawn(receive(node.clone(), ingest.clone(), sub));
    Ok(())
}

/// Publishes this node's heard packets.
async fn publish(node: Arc<Node>, mut rx: mpsc::Receiver<(String, Bytes)>) {
    loop {
        let (subject, payload) = tokio::select! {
            _ = node.shutdown.cancelled() => return,
            m = rx.recv() => match m {
                Some(m) => m,
                None => return,
            },
        };
        if let Err(e) = node.client.publish(subject, payload).await {
            tracing::debug!(error = %e, "sound not sent to the other nodes");
        }
    }
}

/// Relays the other nodes' packets to this node's listeners.
async fn receive(node: Arc<Node>, ingest: Arc<Ingest>, mut sub: async_nats::Subscriber) {
    let prefix = format!("{}.audio.", node.cfg.subject_prefix);
    loop {
        let m = tokio::select! {
            _ = node.shutdown.cancelled() => break,
            m = sub.next() => match m {
                Some(m) => m,
                None => break,
            },
        };
        let channel = m
            .subject
            .strip_prefix(prefix.as_str())
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(event, id)| ingest.channel(event, id));
        let Some(ch) = channel else {
            continue;
        };
        match parse(&m.payload) {
            Some((from, source, ts, opus)) if from != node.id => {
                ingest.remote_audio(&ch, source, ts, opus).await;
            }
            _ => {}
        }
    }
    let _ = sub.unsubscribe().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_back() {
        let mut m = vec![VERSION, 2, b'n', b'1', 1];
        m.extend_from_slice(&7u64.to_be_bytes());
        m.extend_from_slice(&1_790_000_000_000i64.to_be_bytes());
        m.extend_from_slice(&[0xf8, 1, 2]);
        let (node, source, ts, opus) = parse(&m).unwrap();
        assert_eq!(
            (node, source, ts, opus),
            ("n1", Source::Feed(7), 1_790_000_000_000, &[0xf8, 1, 2][..])
        );
        assert!(parse(&m[..10]).is_none());
        m[0] = 2;
        assert!(parse(&m).is_none());
    }
}
