//! Whole-config validation: every problem in a parsed `Config`, each naming the key and
//! (when known) the line, as `babelcast check-config` prints them.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use super::{Config, ForwardConfig, ForwardKind};

impl Config {
    /// Every problem in the config, each naming the key and line.
    pub fn validate(&self, text: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let at = |span: std::ops::Range<usize>| line_of(text, span.start);
        if let Some(cluster) = &self.cluster {
            problems.extend(cluster.problems());
        }
        if self.server.bind.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "server.bind: {:?} is not an address like 127.0.0.1:8080",
                self.server.bind
            ));
        }
        for (i, origin) in self.server.allowed_origins.iter().enumerate() {
            if origin != "*" && super::parse_origin(origin).is_none() {
                problems.push(format!(
                    "server.allowed_origins[{i}]: {origin:?} is not an origin like https://example.org or http://host:8080"
                ));
            }
        }
        match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(_), None) => {
                problems.push("server.tls_key: required with server.tls_cert".into())
            }
            (None, Some(_)) => {
                problems.push("server.tls_cert: required with server.tls_key".into())
            }
            _ => {}
        }
        if let Some(ca) = &self.server.forward_ca_file {
            if let Err(e) = super::load_ca_file(ca.get_ref()) {
                problems.push(format!(
                    "server.forward_ca_file (line {}): {}: {e}",
                    at(ca.span()),
                    ca.get_ref().display()
                ));
            }
        }
        problems.extend(self.ingest.problems());
        problems.extend(self.audio.problems());
        let l = &self.limits;
        for (key, value) in [
            ("limits.per_ip_connect_rate", l.per_ip_connect_rate),
            ("limits.publisher_rate", l.publisher_rate),
        ] {
            if !value.is_finite() || value < 0.0 {
                problems.push(format!(
                    "{key}: must be 0 (off) or a positive number per second"
                ));
            }
        }
        for (key, value) in [
            ("limits.max_caption_chars", l.max_caption_chars),
            ("limits.max_frame_bytes", l.max_frame_bytes),
            ("limits.listener_queue", l.listener_queue),
            ("limits.publisher_in_flight", l.publisher_in_flight),
            ("limits.history_in_memory", l.history_in_memory),
            ("limits.max_body_bytes", l.max_body_bytes),
        ] {
            if value == 0 {
                problems.push(format!("{key}: must be greater than 0"));
            }
        }
        let mut event_ids = HashSet::new();
        for (ei, event) in self.events.iter().enumerate() {
            let key = format!("events[{ei}]");
            if !is_valid_id(event.id.get_ref()) {
                problems.push(format!(
                    "{key}.id (line {}): {:?} must be 1-64 characters of a-z, 0-9, '-' or '_'",
                    at(event.id.span()),
                    event.id.get_ref()
                ));
            }
            if event
                .access_code
                .as_ref()
                .is_some_and(|c| c.trim().is_empty() || c.len() > 128)
            {
                problems.push(format!(
                    "{key}.access_code: must be 1-128 characters (omit it for an open event)"
                ));
            }
            if !event_ids.insert(event.id.get_ref().as_str()) {
                problems.push(format!(
                    "{key}.id (line {}): duplicate event id {:?}",
                    at(event.id.span()),
                    event.id.get_ref()
                ));
            }
            let ids: HashMap<&str, usize> = event
                .channels
                .iter()
                .enumerate()
                .map(|(i, c)| (c.id.get_ref().as_str(), i))
                .collect();
            let mut seen = HashSet::new();
            for (ci, ch) in event.channels.iter().enumerate() {
                let key = format!("{key}.channels[{ci}]");
                if !is_valid_id(ch.id.get_ref()) {
                    problems.push(format!(
                        "{key}.id (line {}): {:?} must be 1-64 characters of a-z, 0-9, '-' or '_'",
                        at(ch.id.span()),
                        ch.id.get_ref()
                    ));
                }
                if !seen.insert(ch.id.get_ref().as_str()) {
                    problems.push(format!(
                        "{key}.id (line {}): duplicate channel id {:?} in event {:?}",
                        at(ch.id.span()),
                        ch.id.get_ref(),
                        event.id.get_ref()
                    ));
                }
                let lang = ch.lang.get_ref();
                if lang != "auto" && !crate::langid::is_known_tag(lang) {
                    problems.push(format!(
                        "{key}.lang (line {}): {lang:?} is not a known BCP-47 primary tag (like \"en\", \"zh\") or \"auto\"",
                        at(ch.lang.span())
                    ));
                }
                if ch.publish_tokens.iter().any(|t| t.len() < 8) {
                    problems.push(format!(
                        "{key}.publish_tokens: tokens must be at least 8 characters"
                    ));
                }
                for (fi, f) in ch.forward.iter().enumerate() {
                    for p in f.problems() {
                        problems.push(format!("{key}.forward[{fi}].{p}"));
                    }
                }
                if let Some(source) = &ch.source {
                    let s = source.get_ref().as_str();
                    if s == ch.id.get_ref() {
                        problems.push(format!(
                            "{key}.source (line {}): a channel cannot be its own source",
                            at(source.span())
                        ));
                    } else if !ids.contains_key(s) {
                        problems.push(format!(
                            "{key}.source (line {}): no channel {s:?} in event {:?}",
                            at(source.span()),
                            event.id.get_ref()
                        ));
                    }
                }
            }
            // Relay cycles: follow source links from every channel.
            for (ci, ch) in event.channels.iter().enumerate() {
                let mut current = ci;
                let mut steps = 0;
                while let Some(src) = &event.channels[current].source {
                    match ids.get(src.get_ref().as_str()) {
                        Some(&next) if next == ci => {
                            problems.push(format!(
                                "events[{ei}].channels[{ci}].source (line {}): relay cycle through channel {:?}",
                                at(ch.source.as_ref().map(|s| s.span()).unwrap_or(0..0)),
                                ch.id.get_ref()
                            ));
                            break;
                        }
                        Some(&next) if steps < event.channels.len() => {
                            current = next;
                            steps += 1;
                        }
                        _ => break,
                    }
                }
            }
        }
        problems
    }
}

impl ForwardConfig {
    /// Problems with this forwarder, each starting with the key it names.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match self.url.parse::<axum::http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.authority().is_some() => {}
            _ => problems.push(format!(
                "url: {:?} is not an https:// or http:// URL with a host",
                self.url
            )),
        }
        if let Some(lang) = &self.lang {
            if self.kind != ForwardKind::Zoom {
                problems.push("lang: only zoom forwarders take a lang".to_string());
            } else if !matches!(crate::formats::parse_lang(Some(lang)), Ok(Some(_))) {
                problems.push(format!("lang: {lang:?} is not a code like en-US or jp-JP"));
            }
        }
        problems
    }
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn problems_name_key_and_line() {
        let err = parse(
            "[[events]]\nid = \"x\"\n[[events.channels]]\nid = \"en\"\nlang = \"english\"\nsource = \"floor\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("events[0].channels[0].lang (line 5)"), "{err}");
        assert!(
            err.contains("events[0].channels[0].source (line 6)"),
            "{err}"
        );
    }

    #[test]
    fn relay_cycles_are_refused() {
        let err = parse(
            "[[events]]\nid = \"x\"\n[[events.channels]]\nid = \"a\"\nlang = \"en\"\nsource = \"b\"\n[[events.channels]]\nid = \"b\"\nlang = \"fr\"\nsource = \"a\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("relay cycle"), "{err}");
    }

    #[test]
    fn security_keys_are_validated_naming_the_key() {
        let err = parse(
            "[server]\nallowed_origins = [\"https://ok.example\", \"null\", \"https://e.org/path\"]\ntls_cert = \"c.pem\"\n[limits]\npublisher_rate = -1.0\nper_ip_connect_rate = inf\n[[events]]\nid = \"x\"\naccess_code = \" \"\n",
        )
        .unwrap_err()
        .to_string();
        for key in [
            "server.allowed_origins[1]",
            "server.allowed_origins[2]",
            "server.tls_key: required",
            "limits.publisher_rate",
            "limits.per_ip_connect_rate",
            "events[0].access_code",
        ] {
            assert!(err.contains(key), "{key} not named in:\n{err}");
        }
        assert!(!err.contains("allowed_origins[0]"), "{err}");
    }

    #[test]
    fn forward_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let toml = |path: &Path| {
            format!(
                "\n[server]\nforward_ca_file = {:?}\n",
                path.display().to_string()
            )
        };
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        for path in [&missing, &garbage] {
            let err = parse(&toml(path)).unwrap_err().to_string();
            assert!(err.contains("server.forward_ca_file (line 3)"), "{err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
        let ca = rcgen::generate_simple_self_signed(vec!["ca.example".into()]).unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, ca.cert.pem()).unwrap();
        let c = parse(&toml(&good)).unwrap();
        assert_eq!(c.server.forward_ca_file.unwrap().into_inner(), good);
    }
}
