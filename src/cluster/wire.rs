//! What babelcast nodes send each other through NATS: the stream message carrying committed
//! events and who is on air, and the partial relayed over core NATS. An API boundary between node versions:
//! fields are only ever added (with serde defaults), never renamed.

use serde::{Deserialize, Serialize};

use crate::record::{Kind, Record};

/// Version of [`Batch`]; a node refuses to apply messages from a newer major version.
pub const VERSION: u32 = 1;

/// One JetStream message: consecutive events of one channel, sequenced by the node that
/// published it (`{prefix}.ev.{event}.{channel}`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Batch {
    pub v: u32,
    /// The publishing node's id.
    pub node: String,
    pub events: Vec<Event>,
    /// Who is on air on the channel after this message. The node that published it decided
    /// the air against the message before (the stream's compare-and-set makes that one
    /// decision cluster-wide). Absent: unchanged (messages of older nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub air: Option<Air>,
}

/// Who is on air on a channel, as of a point of its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Air {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Holder>,
    /// Who was last on air (the `from` of the next handover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

/// One committed event, in full.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    /// `line`, `edit` or `handover`.
    pub kind: String,
    pub ts: i64,
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lang: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// For a final: the publishing node's partial generation when the final arrived, so
    /// every node clears the partial the line completes (and no newer one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgen: Option<u64>,
}

impl Event {
    pub fn from_record(r: &Record, pgen: Option<u64>) -> Event {
        Event {
            seq: r.seq,
            kind: r.kind.as_str().to_string(),
            ts: r.ts,
            text: r.text.clone(),
            lang: r.lang.clone(),
            of: r.of,
            client_id: r.client_id.clone(),
            expected_lang: r.expected_lang.clone(),
            author: r.author.clone(),
            pgen,
        }
    }

    /// The record, if the kind is one this node knows.
    pub fn to_record(&self) -> Option<Record> {
        Some(Record {
            seq: self.seq,
            kind: Kind::parse(&self.kind)?,
            ts: self.ts,
            text: self.text.clone(),
            lang: self.lang.clone(),
            of: self.of,
            client_id: self.client_id.clone(),
            expected_lang: self.expected_lang.clone(),
            author: self.author.clone(),
        })
    }
}

/// A partial relayed to the other nodes over core NATS (`{prefix}.partial.{event}.{channel}`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Partial {
    pub node: String,
    /// The sending node's partial generation (orders partials against the final that
    /// completes them).
    pub gen: u64,
    pub text: String,
}

/// The shared booth of one channel, the value in the booth bucket (key `{event}.{channel}`):
/// the pending handover request. Who is on air is in the stream ([`Batch::air`]); `on_air`
/// and `last` are kept for nodes of older versions and no longer read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoothRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_air: Option<Holder>,
    #[serde(default)]
    pub request: Option<Holder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

/// A booth publisher, on some node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub node: String,
    pub id: u64,
    pub name: String,
    /// Which of the channel's publish tokens it connected with (its index): the same name
    /// with the same token is the same person, who may resume the air on another connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred: Option<u32>,
}

impl Holder {
    /// Whether `other` is the same person (name and credential) on another connection.
    pub fn same_person(&self, other: &Holder) -> bool {
        self.name == other.name && self.cred == other.cred
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let r = Record {
            seq: 7,
            kind: Kind::Edit,
            ts: 99,
            text: "«fixed» 修正".into(),
            lang: String::new(),
            of: Some(3),
            client_id: None,
            expected_lang: None,
            author: Some("Anna".into()),
        };
        let b = Batch {
            v: VERSION,
            node: "n1".into(),
            events: vec![Event::from_record(&r, Some(4))],
            air: None,
        };
        let json = serde_json::to_vec(&b).unwrap();
        let back: Batch = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.events[0].to_record().unwrap(), r);
        assert_eq!(back.events[0].pgen, Some(4));
    }
}

/// A node's presence entry in the nodes bucket (`{node_id}`), refreshed every third of the
/// presence TTL; `boot` tells one run of the node from the next.
#[derive(Debug, Serialize, Deserialize)]
pub struct Presence {
    pub boot: String,
}

/// A node's listeners and their feedback per channel (`{prefix}.audience.{node}`, core NATS,
/// every few seconds).
#[derive(Debug, Serialize, Deserialize)]
pub struct Audience {
    pub node: String,
    /// Channels with listeners or feedback on that node.
    pub channels: Vec<ChannelAudience>,
}

/// One channel's audience on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelAudience {
    /// The booth key, `{event}.{channel}`.
    pub key: String,
    pub listeners: u64,
    /// Feedback over the last minute: `[slower, unclear, lost]`.
    #[serde(default)]
    pub feedback: [u32; 3],
}
