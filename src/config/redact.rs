//! Redacting `Debug` for the config types that hold secrets: a `{:?}` in a log or a panic
//! message must never reveal a token, access code or caption-service URL (Zoom's carries its
//! API token).

use super::{AdminConfig, ChannelConfig, EventConfig, ForwardConfig};

const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("token", &REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for EventConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventConfig")
            .field("id", self.id.get_ref())
            .field("title", &self.title)
            .field("access_code", &self.access_code.as_ref().map(|_| REDACTED))
            .field("channels", &self.channels)
            .finish()
    }
}

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("id", self.id.get_ref())
            .field("lang", self.lang.get_ref())
            .field("label", &self.label)
            .field("source", &self.source.as_ref().map(|s| s.get_ref()))
            .field("publish_tokens", &self.publish_tokens.len())
            .field("takeover_after_secs", &self.takeover_after_secs)
            .field("forward", &self.forward)
            .finish()
    }
}

impl std::fmt::Debug for ForwardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base = self.url.split('?').next().unwrap_or_default();
        f.debug_struct("ForwardConfig")
            .field("kind", &self.kind)
            .field("url", &format!("{base}?{REDACTED}"))
            .field("lang", &self.lang)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    #[test]
    fn debug_output_never_shows_secrets() {
        let text = "[admin]\ntoken = \"admin-secret-1\"\n[[events]]\nid = \"e\"\naccess_code = \"code-secret-2\"\n[[events.channels]]\nid = \"en\"\nlang = \"en\"\npublish_tokens = [\"publish-secret-3\"]\n";
        let c = Config::parse(text, Path::new("t.toml")).unwrap();
        let dbg = format!("{c:?}");
        for secret in ["admin-secret-1", "code-secret-2", "publish-secret-3"] {
            assert!(!dbg.contains(secret), "{dbg}");
        }
    }
}
