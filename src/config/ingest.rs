//! `[ingest]`: how babelcast treats the line in progress of caption streams that never end it
//! themselves (caption software posting without a trailing line break, an EBU-TT Live producer
//! that stops without a clearing document).

use std::time::Duration;

use serde::Deserialize;

/// Default silence after which a line in progress is committed: longer than the pause between
/// two words of a live captioner, short enough that a caption is in the transcript (and on
/// every phone as a line) a moment after the speaker stops.
pub const DEFAULT_IDLE_COMMIT_MS: u64 = 3_000;
/// Shortest `idle_commit_ms` accepted: below it a captioner's pause mid-sentence would split
/// lines.
pub const MIN_IDLE_COMMIT_MS: u64 = 50;
/// Longest `idle_commit_ms` accepted (ten minutes).
pub const MAX_IDLE_COMMIT_MS: u64 = 600_000;

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Milliseconds without news from a caption stream (Zoom, StreamText, EBU-TT Live) after
    /// which its line in progress is committed as a line.
    pub idle_commit_ms: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            idle_commit_ms: DEFAULT_IDLE_COMMIT_MS,
        }
    }
}

impl IngestConfig {
    /// The silence after which a line in progress is committed.
    pub fn idle_commit(&self) -> Duration {
        Duration::from_millis(
            self.idle_commit_ms
                .clamp(MIN_IDLE_COMMIT_MS, MAX_IDLE_COMMIT_MS),
        )
    }

    /// Problems with the section, naming the key.
    pub fn problems(&self) -> Vec<String> {
        let ms = self.idle_commit_ms;
        if (MIN_IDLE_COMMIT_MS..=MAX_IDLE_COMMIT_MS).contains(&ms) {
            Vec::new()
        } else {
            vec![format!(
                "ingest.idle_commit_ms: {ms} is out of range: use {MIN_IDLE_COMMIT_MS} to {MAX_IDLE_COMMIT_MS} milliseconds (default {DEFAULT_IDLE_COMMIT_MS})"
            )]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_commit_ms_is_validated_naming_the_key() {
        assert!(IngestConfig::default().problems().is_empty());
        for bad in [0, MIN_IDLE_COMMIT_MS - 1, MAX_IDLE_COMMIT_MS + 1] {
            let c = IngestConfig {
                idle_commit_ms: bad,
            };
            let p = c.problems();
            assert!(
                p.len() == 1 && p[0].starts_with("ingest.idle_commit_ms"),
                "{p:?}"
            );
        }
        let c = IngestConfig {
            idle_commit_ms: 200,
        };
        assert_eq!(c.idle_commit(), Duration::from_millis(200));
    }
}
