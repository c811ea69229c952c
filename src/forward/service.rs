//! What each caption service expects: the URL and body of a post carrying one line (Zoom:
//! `seq` and `lang` parameters, with the language in Zoom's codes; YouTube: a timestamped
//! body), and Zoom's query for the last seq it accepted.

use axum::http::Method;

use super::{Forwarder, HttpClient, POST_TIMEOUT};
use crate::config::ForwardKind;
use crate::formats::{parse_lang, youtube, zoom};
use crate::record::Record;

impl Forwarder {
    /// Zoom's `lang` for a line: the configured one, else the channel's (or on an `auto`
    /// channel the line's) language in Zoom's codes.
    fn zoom_lang(&self, channel_lang: &str, record: &Record) -> String {
        if let Some(l) = &self.lang {
            return l.clone();
        }
        let tag = if channel_lang == "auto" {
            record.lang.as_str()
        } else {
            channel_lang
        };
        match parse_lang(Some(tag)) {
            Ok(Some(primary)) if primary != "und" => zoom::lang_code(&primary),
            _ => "en-US".to_string(),
        }
    }

    /// The URL and body of the post carrying `record` as remote seq `seq`.
    pub(super) fn request(
        &self,
        channel_lang: &str,
        record: &Record,
        seq: u64,
    ) -> (String, String) {
        match self.kind {
            ForwardKind::Zoom => (
                zoom::post_url(&self.url, seq, &self.zoom_lang(channel_lang, record)),
                // A line break ends the caption line (Zoom's own example ends with "\n").
                format!("{}\n", record.text),
            ),
            ForwardKind::Youtube => (
                youtube::post_url(&self.url, seq),
                youtube::body(record.ts, None, &record.text),
            ),
        }
    }
}

/// What Zoom's seq URL said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SeqAnswer {
    /// The last seq the meeting accepted.
    Seq(u64),
    /// An answer that is no seq (a refusal, or a body that is not a number): asking again
    /// will not help.
    Refused,
    /// No answer (connection error, timeout) or one worth retrying (408, 429, 5xx).
    Unreachable,
}

/// Asks a Zoom caption URL for its last accepted seq (one attempt).
pub(super) async fn zoom_remote_seq(client: &HttpClient, url: &str) -> SeqAnswer {
    match client
        .send(Method::GET, &zoom::seq_url(url), None, POST_TIMEOUT)
        .await
    {
        Ok(a) if a.status == 200 => match zoom::parse_seq_answer(&a.body) {
            Some(n) => SeqAnswer::Seq(n),
            None => {
                tracing::warn!("the Zoom seq URL answered something that is not a seq");
                SeqAnswer::Refused
            }
        },
        Ok(a) if super::retryable(a.status) => {
            tracing::warn!(status = a.status, "the Zoom seq URL failed");
            SeqAnswer::Unreachable
        }
        Ok(a) => {
            tracing::warn!(status = a.status, "the Zoom seq URL refused");
            SeqAnswer::Refused
        }
        Err(e) => {
            tracing::warn!(error = %e, "the Zoom seq URL did not answer");
            SeqAnswer::Unreachable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::ForwardStats;
    use crate::record::Kind;

    fn forwarder(kind: ForwardKind, lang: Option<&str>) -> Forwarder {
        Forwarder {
            event: "e".into(),
            channel: "c".into(),
            index: 0,
            kind,
            url: "http://127.0.0.1:9/cc?id=1".into(),
            lang: lang.map(Into::into),
            ca_file: None,
            stats: ForwardStats::default(),
        }
    }

    fn line(text: &str, lang: &str) -> Record {
        Record {
            seq: 4,
            kind: Kind::Line,
            ts: 1_356_307_206_873,
            text: text.into(),
            lang: lang.into(),
            of: None,
            client_id: None,
            expected_lang: None,
            author: None,
        }
    }

    #[test]
    fn zoom_requests() {
        let f = forwarder(ForwardKind::Zoom, None);
        let (url, body) = f.request("ja", &line("こんにちは", "ja"), 3);
        assert_eq!(url, "http://127.0.0.1:9/cc?id=1&seq=3&lang=jp-JP");
        assert_eq!(body, "こんにちは\n");
        // An auto channel uses each line's language; an override wins.
        assert!(f
            .request("auto", &line("Bonjour", "fr"), 1)
            .0
            .ends_with("lang=fr-FR"));
        let f = forwarder(ForwardKind::Zoom, Some("en-GB"));
        assert!(f
            .request("en", &line("Hi", "en"), 1)
            .0
            .ends_with("lang=en-GB"));
    }

    #[test]
    fn youtube_requests() {
        let f = forwarder(ForwardKind::Youtube, None);
        let (url, body) = f.request("en", &line("Hello\nworld", "en"), 9);
        assert_eq!(url, "http://127.0.0.1:9/cc?id=1&seq=9");
        assert_eq!(body, "2012-12-24T00:00:06.873\nHello<br>world\n");
    }
}
