//! `[[events]]`, `[[events.channels]]` and `[[events.channels.forward]]`: the conferences, their
//! language channels and the outside caption services a channel's lines are pushed to, as the
//! config file declares them (events made at run time live in the store, see `crate::store`).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::BoothConfig;

/// `[[events]]`: one conference (or hall).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventConfig {
    pub id: Spanned<String>,
    #[serde(default)]
    pub title: String,
    /// When set, attendees need it (`?code=`) to listen and to download transcripts.
    #[serde(default)]
    pub access_code: Option<String>,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
}

/// `[[events.channels]]`: one language stream.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub id: Spanned<String>,
    /// BCP-47 primary tag (`en`, `zh`, …) or `auto` for a floor whose language changes.
    pub lang: Spanned<String>,
    /// Human label shown in pickers; defaults to the language's own name.
    #[serde(default)]
    pub label: String,
    /// The channel this one is interpreted from (the floor or a pivot).
    #[serde(default)]
    pub source: Option<Spanned<String>>,
    /// Tokens allowed to publish; a random one is made at start when empty.
    #[serde(default)]
    pub publish_tokens: Vec<String>,
    /// Overrides `booth.takeover_after_secs` for this channel (0 disables the silence rule).
    #[serde(default)]
    pub takeover_after_secs: Option<u64>,
    /// Outside caption services every committed line is pushed to
    /// (`[[events.channels.forward]]`, see [`crate::forward`]).
    #[serde(default)]
    pub forward: Vec<ForwardConfig>,
}

/// Which outside service a forwarder posts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardKind {
    /// A Zoom closed-caption URL (the meeting's "API token").
    Zoom,
    /// A YouTube Live HTTP caption ingestion URL.
    Youtube,
}

impl ForwardKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardKind::Zoom => "zoom",
            ForwardKind::Youtube => "youtube",
        }
    }
}

/// `[[events.channels.forward]]`: one outside service the channel's lines are pushed to.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// `zoom` or `youtube`.
    pub kind: ForwardKind,
    /// The caption URL, as the service gives it (`https://` or `http://`).
    pub url: String,
    /// Zoom only: the `lang` sent with every post (like `en-GB`); by default the channel's
    /// (or, on an `auto` channel, each line's) language in Zoom's codes (`jp-JP` for Japanese).
    #[serde(default)]
    pub lang: Option<String>,
}

impl ChannelConfig {
    /// The silence after which a standby partner may take over, if the rule is on.
    pub fn takeover_after(&self, booth: &BoothConfig) -> Option<Duration> {
        match self
            .takeover_after_secs
            .unwrap_or(booth.takeover_after_secs)
        {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        }
    }
}
