//! The fuzz targets' bodies, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/*.rs`,
//! nightly, libFuzzer) and the stable smoke test (`tests/fuzz_smoke.rs`, every `cargo test`),
//! which runs each over its seed corpus in `fuzz/corpus/{target}/` plus seeded mutations.
//!
//! Each check feeds untrusted bytes to one parser and asserts the parser's own promises, so a
//! fuzzer finds wrong answers as well as panics.
#![allow(dead_code)]

use std::path::Path;

use babelcast::formats::ebutt;
use babelcast::formats::line::LineBuffer;
use babelcast::formats::{self, timestamp, youtube, zoom};
use babelcast::protocol::parse_client;

/// A fuzz target's body.
pub type Check = fn(&[u8]);

/// Every target, by the name of its corpus directory.
pub const TARGETS: &[(&str, Check)] = &[
    ("client_message", client_message),
    ("config", config),
    ("youtube_body", youtube_body),
    ("caption_stream", caption_stream),
    ("timestamp", timestamp_roundtrip),
    ("query_params", query_params),
    ("ebutt_document", ebutt_document),
];

/// EBU-TT Live documents (a `0x00` byte separates documents of one sequence). A document that
/// parses has rows within the limits; showing the documents in turn never commits an empty or
/// over-long line, and the line in progress is always the last row shown.
pub fn ebutt_document(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // tungstenite refuses non-UTF-8 text frames before we see them
    };
    const MAX: usize = 200;
    let mut screen = ebutt::Screen::default();
    for doc in text.split('\0') {
        let Ok(d) = ebutt::parse(doc, MAX) else {
            continue;
        };
        let rows = d.rows();
        assert!(rows.len() <= ebutt::MAX_ROWS, "{} rows", rows.len());
        for r in &rows {
            assert!(!r.trim().is_empty(), "an empty row");
            assert!(r.chars().count() <= MAX, "a row over {MAX} chars");
        }
        let shown = screen.show(&rows);
        for f in &shown.finals {
            assert!(
                !f.trim().is_empty() && f.chars().count() <= MAX,
                "final {f:?}"
            );
        }
        assert_eq!(screen.in_progress(), rows.last().map_or("", String::as_str));
    }
}

/// A WebSocket text frame from a publisher or listener (`protocol::parse_client`). A message
/// that parses serialises back to one that parses to the same value.
pub fn client_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // tungstenite refuses non-UTF-8 text frames before we see them
    };
    match parse_client(text) {
        Ok(msg) => {
            let again = serde_json::to_string(&msg).expect("a parsed message serialises");
            assert_eq!(parse_client(&again).expect("and parses again"), msg);
        }
        Err(r) => {
            assert!(!r.message.is_empty());
            // Refusals are framed for the client without failing.
            let _ = r.to_frame();
        }
    }
}

/// A config file (`babelcast check-config`, startup). Problems name a key; a valid config
/// stays valid when re-validated.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match babelcast::Config::parse(text, Path::new("fuzz.toml")) {
        Ok(c) => assert!(c.validate(text).is_empty()),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A YouTube Live caption post body. Every cue fits the length limit it was parsed with.
pub fn youtube_body(data: &[u8]) {
    let Some((&max, rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(max) + 1;
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if let Ok(cues) = youtube::parse_body(text, max) {
        for cue in cues {
            assert!(cue.text.chars().count() <= max, "cue over {max} chars");
        }
    }
    let _ = youtube::decode_breaks(text);
}

/// A Zoom or StreamText caption stream, posted in chunks (a `0xff` byte splits posts). No
/// committed line is empty or longer than the limit; the line in progress never is either.
pub fn caption_stream(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let corrections = flags & 1 == 1;
    let max = usize::from(flags >> 1) + 1;
    let mut line = LineBuffer::default();
    for chunk in rest.split(|&b| b == 0xff) {
        let text = String::from_utf8_lossy(chunk);
        let applied = if corrections {
            formats::streamtext::apply(&mut line, &text, max)
        } else {
            line.push(&text, false, max)
        };
        for f in &applied.finals {
            assert!(!f.trim().is_empty(), "an empty final was committed");
            assert!(f.chars().count() <= max, "final over {max} chars: {f:?}");
            assert!(
                !f.contains(['\r', '\n']),
                "a final holds a line break: {f:?}"
            );
        }
        assert!(
            line.line().chars().count() <= max,
            "line in progress over {max}"
        );
    }
}

/// The `YYYY-MM-DDTHH:MM:SS.mmm` timestamps of Zoom and YouTube: whatever parses formats back
/// to the same text.
pub fn timestamp_roundtrip(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(ms) = timestamp::parse(text) {
        assert_eq!(timestamp::format(ms), text);
    }
}

/// Query parameters and small answers of the ingest formats (`seq`, `lang`, Zoom's seq URL).
pub fn query_params(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(n) = formats::parse_seq(Some(&text)) {
        assert_eq!(formats::parse_seq(Some(&n.to_string())), Ok(n));
    }
    if let Ok(Some(lang)) = formats::parse_lang(Some(&text)) {
        assert!(!lang.is_empty());
    }
    let _ = zoom::parse_seq_answer(&text);
    let _ = zoom::seq_url(&text);
    let _ = formats::with_params(&text, &[("seq", "1"), ("lang", &text)]);
    for last in [None, Some(0), Some(1), Some(u64::MAX)] {
        if let Ok(seq) = formats::parse_seq(Some(&text)) {
            let last = last.map(|seq| formats::LastPost { seq, body: 1 });
            let _ = formats::check_seq(last, seq, formats::text_hash(&text));
        }
    }
}
