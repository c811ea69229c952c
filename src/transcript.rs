//! Transcript export: a channel's stored events rendered as TXT, WebVTT, SRT or JSON.
//!
//! Cues are timed from each line's timestamp relative to the channel's first line, and never
//! overlap: a cue ends when the next begins, so players show one caption at a time. The
//! `corrected` version applies every edit to its line; `as-shown` keeps each line as it was
//! first shown and lists the corrections as they happened. `cue_text` makes caption text safe
//! as a cue's payload.

mod cue_text;

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::channel::ChannelInfo;
use crate::protocol::api::{Transcript, TranscriptEvent, TranscriptLine};
use crate::protocol::MsgType;
use crate::record::{Kind, Record};

/// Shortest time a cue stays up, in milliseconds.
const MIN_CUE_MS: i64 = 1_000;
/// Longest time a cue stays up when no line follows soon, in milliseconds.
const MAX_CUE_MS: i64 = 7_000;
/// Reading time per character used to size a cue, in milliseconds.
const MS_PER_CHAR: i64 = 60;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Txt,
    Vtt,
    Srt,
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "txt" => Some(Format::Txt),
            "vtt" => Some(Format::Vtt),
            "srt" => Some(Format::Srt),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Vtt => "vtt",
            Format::Srt => "srt",
            Format::Json => "json",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Txt => "text/plain; charset=utf-8",
            Format::Vtt => "text/vtt; charset=utf-8",
            Format::Srt => "application/x-subrip; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// Which text of a corrected line to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Every edit applied.
    Corrected,
    /// The text as first shown to listeners.
    AsShown,
}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        match s {
            "corrected" => Some(Version::Corrected),
            "as-shown" | "as_shown" => Some(Version::AsShown),
            _ => None,
        }
    }
}

/// One line of the exported transcript.
struct Cue<'a> {
    seq: u64,
    start_ms: i64,
    end_ms: i64,
    text: &'a str,
    lang: &'a str,
    edited: bool,
}

fn cues<'a>(records: &'a [Record], version: Version) -> Vec<Cue<'a>> {
    let mut latest: HashMap<u64, &str> = HashMap::new();
    if version == Version::Corrected {
        for r in records.iter().filter(|r| r.kind == Kind::Edit) {
            if let Some(of) = r.of {
                latest.insert(of, &r.text);
            }
        }
    }
    let edited: std::collections::HashSet<u64> = records
        .iter()
        .filter(|r| r.kind == Kind::Edit)
        .filter_map(|r| r.of)
        .collect();
    let lines: Vec<&Record> = records.iter().filter(|r| r.kind == Kind::Line).collect();
    let t0 = lines.first().map(|r| r.ts).unwrap_or(0);
    // The end of the cue before: a cue starts at its line's time or when the last one ended,
    // whichever is later (lines stored in the same millisecond follow each other).
    let mut prev_end = 0;
    lines
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let text = latest.get(&r.seq).copied().unwrap_or(&r.text);
            let start = (r.ts - t0).max(prev_end);
            let wanted = (text.chars().count() as i64 * MS_PER_CHAR).clamp(MIN_CUE_MS, MAX_CUE_MS);
            let mut end = start + wanted;
            if let Some(next) = lines.get(i + 1) {
                // The next line takes over: no two cues on screen at once.
                end = end.min(next.ts - t0);
            }
            // Every cue lasts (WebVTT and SRT readers drop or reorder empty cues).
            let end = end.max(start + 1);
            prev_end = end;
            Cue {
                seq: r.seq,
                start_ms: start,
                end_ms: end,
                text,
                lang: &r.lang,
                edited: edited.contains(&r.seq),
            }
        })
        .collect()
}

fn stamp(ms: i64, sep: char) -> String {
    let ms = ms.max(0);
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Handover notes `(seq, "Anna → Ben (request)")` in seq order.
fn handovers(records: &[Record]) -> Vec<(u64, String)> {
    records
        .iter()
        .filter_map(|r| {
            let h = r.handover()?;
            Some((
                r.seq,
                format!(
                    "handover: {} → {} ({})",
                    h.from.as_deref().unwrap_or("nobody"),
                    h.to.as_deref().unwrap_or("nobody"),
                    h.reason
                ),
            ))
        })
        .collect()
}

/// Renders the transcript.
pub fn render(format: Format, version: Version, info: &ChannelInfo, records: &[Record]) -> String {
    let cues = cues(records, version);
    let notes = handovers(records);
    let mut next_note = 0;
    let mut out = String::new();
    match format {
        Format::Txt => {
            for c in &cues {
                while notes.get(next_note).is_some_and(|(seq, _)| *seq < c.seq) {
                    let _ = writeln!(out, "[{}]", notes[next_note].1);
                    next_note += 1;
                }
                let _ = writeln!(out, "{}", c.text);
            }
            for (_, note) in &notes[next_note..] {
                let _ = writeln!(out, "[{note}]");
            }
        }
        Format::Vtt => {
            out.push_str("WEBVTT\n\n");
            for c in &cues {
                let text = cue_text::vtt(c.text);
                while notes.get(next_note).is_some_and(|(seq, _)| *seq < c.seq) {
                    let _ = write!(out, "NOTE {}\n\n", cue_text::note(&notes[next_note].1));
                    next_note += 1;
                }
                let _ = write!(
                    out,
                    "{}\n{} --> {}\n{}\n\n",
                    c.seq,
                    stamp(c.start_ms, '.'),
                    stamp(c.end_ms, '.'),
                    text
                );
            }
        }
        Format::Srt => {
            for (i, c) in cues.iter().enumerate() {
                let _ = write!(
                    out,
                    "{}\n{} --> {}\n{}\n\n",
                    i + 1,
                    stamp(c.start_ms, ','),
                    stamp(c.end_ms, ','),
                    cue_text::srt(c.text)
                );
            }
        }
        Format::Json => {
            let lines = cues
                .iter()
                .map(|c| TranscriptLine {
                    edited: c.edited,
                    end_ms: c.end_ms,
                    lang: c.lang,
                    seq: c.seq,
                    start_ms: c.start_ms,
                    text: c.text,
                })
                .collect();
            let events = records.iter().map(transcript_event).collect();
            let transcript = Transcript {
                channel: &info.id,
                event: &info.event,
                events,
                label: &info.label,
                lang: &info.lang,
                lines,
                version: match version {
                    Version::Corrected => "corrected",
                    Version::AsShown => "as-shown",
                },
            };
            out = serde_json::to_string(&transcript).expect("transcripts always serialise");
        }
    }
    out
}

/// A stored event as the JSON transcript lists it.
fn transcript_event(r: &Record) -> TranscriptEvent<'_> {
    match r.kind {
        Kind::Line => TranscriptEvent::Line {
            expected_lang: r.expected_lang.as_deref(),
            lang: &r.lang,
            seq: r.seq,
            text: &r.text,
            ts: r.ts,
            kind: MsgType::Line,
        },
        Kind::Edit => TranscriptEvent::Edit {
            of: r.of,
            seq: r.seq,
            text: &r.text,
            ts: r.ts,
            kind: MsgType::Edit,
        },
        Kind::Handover => {
            let h = r.handover();
            TranscriptEvent::Handover {
                from: h.as_ref().and_then(|h| h.from.clone()),
                reason: h.as_ref().map(|h| h.reason.clone()),
                seq: r.seq,
                to: h.as_ref().and_then(|h| h.to.clone()),
                ts: r.ts,
                kind: MsgType::Handover,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, kind: Kind, ts: i64, text: &str, of: Option<u64>) -> Record {
        Record {
            seq,
            kind,
            ts,
            text: text.into(),
            lang: "en".into(),
            of,
            client_id: None,
            expected_lang: None,
            author: None,
        }
    }

    fn info() -> ChannelInfo {
        ChannelInfo {
            event: "e".into(),
            id: "en".into(),
            lang: "en".into(),
            label: "English".into(),
            source: None,
        }
    }

    #[test]
    fn cues_never_overlap_however_fast_lines_come() {
        let records = [
            rec(1, Kind::Line, 5_000, "A first line of some length.", None),
            rec(2, Kind::Line, 5_100, "Fast.", None),
            rec(3, Kind::Line, 5_100, "Same millisecond.", None),
            rec(4, Kind::Line, 5_100, "And again.", None),
            rec(5, Kind::Line, 20_000, "Much later.", None),
        ];
        let times: Vec<(i64, i64)> = cues(&records, Version::Corrected)
            .iter()
            .map(|c| (c.start_ms, c.end_ms))
            .collect();
        assert_eq!(
            times,
            [
                (0, 100),
                (100, 101),
                (101, 102),
                (102, 1_102),
                (15_000, 16_000)
            ]
        );
    }

    #[test]
    fn vtt_is_timed_from_the_first_line_and_corrected() {
        let records = [
            rec(1, Kind::Line, 10_000, "Hello wrld.", None),
            rec(2, Kind::Line, 12_500, "Second <line>.", None),
            rec(3, Kind::Edit, 13_000, "Hello world.", Some(1)),
        ];
        let vtt = render(Format::Vtt, Version::Corrected, &info(), &records);
        assert!(
            vtt.starts_with("WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.000\nHello world.\n"),
            "{vtt}"
        );
        assert!(vtt.contains("00:00:02.500 --> "), "{vtt}");
        assert!(vtt.contains("Second &lt;line&gt;."), "{vtt}");
        let shown = render(Format::Txt, Version::AsShown, &info(), &records);
        assert_eq!(shown, "Hello wrld.\nSecond <line>.\n");
        let srt = render(Format::Srt, Version::Corrected, &info(), &records);
        assert!(
            srt.starts_with("1\n00:00:00,000 --> 00:00:01,000\nHello world.\n\n2\n"),
            "{srt}"
        );
    }
}
