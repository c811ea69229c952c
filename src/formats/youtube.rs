//! YouTube Live's HTTP caption ingestion: `POST {ingestion URL}&seq=N` with a `text/plain`
//! body of cues, each a `YYYY-MM-DDTHH:MM:SS.mmm [region:reg1#cue1]` line followed by its
//! text, `<br>` marking a line break inside a cue. An empty body is a heartbeat; the answer is
//! the server's timestamp.

use super::{timestamp, with_params, FormatError};

/// One caption of a YouTube body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    /// The cue's time, Unix milliseconds (UTC).
    pub ts: i64,
    /// The optional region/cue tag after the timestamp (`region:reg1#cue1`).
    pub region: Option<String>,
    /// The caption text, `<br>` turned into `\n`. Empty for a cue that only clears.
    pub text: String,
}

/// Whether a line starts like a timestamp (`dddd-dd-ddT`), so a bad one is refused instead
/// of being taken as caption text.
fn looks_like_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 11
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
        && b[10] == b'T'
}

/// A cue header: a timestamp, then nothing or whitespace and a region tag.
fn header(line: &str) -> Option<(i64, Option<String>)> {
    if !line.is_char_boundary(timestamp::LEN.min(line.len())) {
        return None;
    }
    let (ts, rest) = line.split_at(timestamp::LEN.min(line.len()));
    let ts = timestamp::parse(ts)?;
    if rest.is_empty() {
        return Some((ts, None));
    }
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let region = rest.trim();
    Some((ts, (!region.is_empty()).then(|| region.to_string())))
}

/// Replaces every `<br>`, `<br/>` and `<br />` (any case) with `\n`.
pub fn decode_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let lower: String = tail
            .chars()
            .take(6)
            .collect::<String>()
            .to_ascii_lowercase();
        let len = ["<br />", "<br/>", "<br>"]
            .iter()
            .find(|t| lower.starts_with(**t))
            .map(|t| t.len());
        match len {
            Some(n) => {
                out.push('\n');
                rest = &tail[n..];
            }
            None => {
                out.push('<');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses a body into cues. Blank lines are skipped; text lines following one header are
/// joined with line breaks. Refused: text before the first timestamp, a line that starts like
/// a timestamp but is not one, and a cue longer than `max_chars` characters.
pub fn parse_body(body: &str, max_chars: usize) -> Result<Vec<Cue>, FormatError> {
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    let mut cues: Vec<(usize, Cue)> = Vec::new();
    for (i, raw) in body.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        if let Some((ts, region)) = header(line) {
            cues.push((
                line_no,
                Cue {
                    ts,
                    region,
                    text: String::new(),
                },
            ));
            continue;
        }
        if looks_like_timestamp(line) {
            return Err(FormatError::BadTimestamp {
                line: line_no,
                text: line.chars().take(40).collect(),
            });
        }
        let Some((_, cue)) = cues.last_mut() else {
            return Err(FormatError::TextBeforeTimestamp { line: line_no });
        };
        if !cue.text.is_empty() {
            cue.text.push('\n');
        }
        cue.text.push_str(line);
    }
    cues.into_iter()
        .map(|(line, mut cue)| {
            cue.text = decode_breaks(&cue.text);
            if cue.text.chars().count() > max_chars {
                Err(FormatError::CaptionTooLong {
                    line,
                    max: max_chars,
                })
            } else {
                Ok(cue)
            }
        })
        .collect()
}

/// The body of one post carrying one caption: its timestamp line, then the text with line
/// breaks written as `<br>`.
pub fn body(ts: i64, region: Option<&str>, text: &str) -> String {
    let mut out = timestamp::format(ts);
    if let Some(r) = region {
        out.push(' ');
        out.push_str(r);
    }
    out.push('\n');
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    out.push_str(&text.replace('\n', "<br>"));
    out.push('\n');
    out
}

/// The URL of one caption post.
pub fn post_url(ingestion_url: &str, seq: u64) -> String {
    with_params(ingestion_url, &[("seq", &seq.to_string())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let body = "2012-12-24T00:00:06.873\nI'M\n2012-12-24T00:00:06.974\nSENDING\n2012-12-24T00:00:07.030 region:reg1#cue1\nSEVERAL<br>CAPTIONS\n";
        let cues = parse_body(body, 100).unwrap();
        let texts: Vec<_> = cues.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["I'M", "SENDING", "SEVERAL\nCAPTIONS"]);
        assert_eq!(cues[0].ts, 1_356_307_206_873);
        assert_eq!(cues[2].region.as_deref(), Some("region:reg1#cue1"));
    }

    #[test]
    fn crlf_blank_lines_and_multiline_text() {
        let body = "\r\n2024-05-01T09:30:00.000\r\nfirst\r\nsecond <BR/>third\r\n\r\n";
        let cues = parse_body(body, 100).unwrap();
        assert_eq!(cues.len(), 1);
        assert_eq!(cues[0].text, "first\nsecond \nthird");
    }

    #[test]
    fn empty_body_is_a_heartbeat() {
        assert_eq!(parse_body("", 10).unwrap(), []);
        assert_eq!(parse_body("\n\n", 10).unwrap(), []);
    }

    #[test]
    fn refuses_malformed_bodies() {
        assert_eq!(
            parse_body("hello\n2024-05-01T09:30:00.000\nx", 100),
            Err(FormatError::TextBeforeTimestamp { line: 1 })
        );
        assert!(matches!(
            parse_body(
                "2024-05-01T09:30:00.000\nx\n2024-05-01T25:30:00.000\ny",
                100
            ),
            Err(FormatError::BadTimestamp { line: 3, .. })
        ));
        assert!(matches!(
            parse_body("2024-05-01T09:30:00\nx", 100),
            Err(FormatError::BadTimestamp { line: 1, .. })
        ));
        assert_eq!(
            parse_body("2024-05-01T09:30:00.000\nabcdef", 5),
            Err(FormatError::CaptionTooLong { line: 1, max: 5 })
        );
    }

    #[test]
    fn text_that_merely_starts_with_digits_is_text() {
        let cues = parse_body("2024-05-01T09:30:00.000\n2024 was a good year", 100).unwrap();
        assert_eq!(cues[0].text, "2024 was a good year");
    }

    #[test]
    fn builds_bodies_that_parse_back() {
        let b = body(1_356_307_206_873, None, "two\nlines <b>");
        assert_eq!(b, "2012-12-24T00:00:06.873\ntwo<br>lines <b>\n");
        let cues = parse_body(&b, 100).unwrap();
        assert_eq!(cues[0].text, "two\nlines <b>");
        assert_eq!(
            post_url("http://upload.youtube.com/closedcaption?cid=abc", 3),
            "http://upload.youtube.com/closedcaption?cid=abc&seq=3"
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "<",
            "<b",
            "<br",
            "2024-05-01T",
            "2024-05-01T09:30:00.00é",
            "é\n<br",
            "\u{feff}",
        ] {
            let _ = parse_body(s, 10);
            let _ = decode_breaks(s);
        }
    }
}
