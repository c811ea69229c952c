//! The `booth` message publishers receive: who is on air, the partners, the pending handover
//! request, the listener count, the audience's feedback and the language alert.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{Frame, MsgType};

/// A booth partner as the `booth` message names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoothMember<'a> {
    /// The `publisher_id` of the partner's `hello`.
    pub id: u64,
    /// The display name (`?name=`).
    pub name: Cow<'a, str>,
}

/// Audience feedback over the last minute, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackCounts {
    pub lost: u32,
    pub slower: u32,
    pub unclear: u32,
}

/// The `booth` message to publishers: who is on air, the partners, the pending handover
/// request, listeners, feedback and the language alert (docs/interpreting.md). Keys in
/// alphabetical order, `"type":"booth"` last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoothMsg<'a> {
    pub feedback: FeedbackCounts,
    /// The detected language while the language alert is raised.
    pub language_alert: Option<Cow<'a, str>>,
    pub listeners: u64,
    pub on_air: Option<BoothMember<'a>>,
    /// Every booth partner, on this node and (cluster mode) the on-air one and the requester
    /// on other nodes.
    pub publishers: Vec<BoothMember<'a>>,
    /// The standby partner asking to take over.
    pub request: Option<BoothMember<'a>>,
    /// Always [`MsgType::Booth`].
    #[serde(rename = "type")]
    pub kind: MsgType,
}

impl BoothMsg<'_> {
    /// Serialises the message once into a shareable frame.
    pub fn to_frame(&self) -> Frame {
        Frame::from(serde_json::to_string(self).expect("booth messages always serialise"))
    }
}

/// Reads one `booth` frame (for clients and tests).
pub fn parse_booth(text: &str) -> Option<BoothMsg<'static>> {
    serde_json::from_str(text).ok()
}
