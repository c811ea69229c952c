//! Caption text as the payload of a WebVTT or SRT cue, so that subtitle parsers read back what
//! was published and nothing else: every kind of line break becomes one, no line is blank, and
//! nothing in the text can end a cue or start one.
//!
//! - WebVTT escapes `&`, `<` and `>` (so `-->` is written `--&gt;` and reads back exactly).
//! - SRT has no escapes, so two substitutions, both documented in docs/protocol.md: an arrow of
//!   hyphens (and spaces) ending in `>` is written `->`, and a line holding only a number is
//!   joined with a space to a next line that starts like a timestamp (`99` then
//!   `00:00:05,000 …`), which parsers take for the index and timing of a new cue.

/// Whether `c` ends a line for some reader of subtitle files: WebVTT parsers (CR, LF, CR LF),
/// Python's `str.splitlines` and Unicode (VT, FF, FS, GS, RS, NEL, LINE and PARAGRAPH
/// SEPARATOR).
fn is_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\u{0B}'
            | '\u{0C}'
            | '\u{1C}'
            | '\u{1D}'
            | '\u{1E}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// Whitespace as Python's `str.isspace` and regex `\s` see it (Unicode White_Space plus the
/// separators U+001C..U+001F), for the checks that mirror a Python SRT parser.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c)
}

/// The caption's lines: split at every line break (CR LF counts once), leaving out the lines
/// that show nothing (a blank line would end the cue).
pub fn lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if is_break(c) {
            out.push(&text[start..i]);
            start = i + c.len_utf8();
            if c == '\r' && chars.next_if(|&(_, n)| n == '\n').is_some() {
                start += 1;
            }
        }
    }
    out.push(&text[start..]);
    out.retain(|l| !l.chars().all(is_space));
    out
}

/// The text as the payload of a WebVTT cue.
pub fn vtt(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in lines(text).into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for c in line.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                // What a WebVTT parser makes of it anyway.
                '\0' => out.push('\u{FFFD}'),
                c => out.push(c),
            }
        }
    }
    out
}

/// The text as the payload of an SRT cue (see the module doc for the two substitutions).
pub fn srt(text: &str) -> String {
    let lines: Vec<String> = lines(text).into_iter().map(no_arrows).collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            let joined = is_index(&lines[i - 1]) && starts_like_timestamp(line);
            out.push(if joined { ' ' } else { '\n' });
        }
        out.push_str(line);
    }
    out
}

/// One line of a WebVTT `NOTE` block: line breaks become spaces, arrows lose their hyphens.
pub fn note(text: &str) -> String {
    no_arrows(&lines(text).join(" "))
}

/// Writes every `-` followed by any hyphens and spaces and then `>` (`-->`, `--->`, `- >`,
/// `-- >`: timing arrows to some parser) as `->`. The result has none left: a match starts at
/// the first hyphen of its run, so no hyphen is left before a `->` it made.
fn no_arrows(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'-' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < b.len() && (b[j] == b'-' || b[j] == b' ') {
            j += 1;
        }
        if j < b.len() && b[j] == b'>' {
            out.push_str(&line[copied..i]);
            out.push_str("->");
            copied = j + 1;
        }
        i = j;
    }
    out.push_str(&line[copied..]);
    out
}

/// Whether a line reads as an SRT cue index: an optional `-`, digits, an optional `.` and
/// digits (the widest form parsers accept), with whitespace around.
fn is_index(line: &str) -> bool {
    let t = line.trim_matches(is_space);
    let t = t.strip_prefix('-').unwrap_or(t);
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    !whole.is_empty()
        && whole.bytes().all(|c| c.is_ascii_digit())
        && frac.bytes().all(|c| c.is_ascii_digit())
}

/// Whether a line starts like an SRT timestamp: three groups of digits with separators (the
/// ASCII and full-width ones parsers accept), after any whitespace.
fn starts_like_timestamp(line: &str) -> bool {
    let mut rest = line.trim_start_matches(is_space);
    for group in 0..3 {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        if group < 2 {
            let mut it = rest.chars();
            match it.next() {
                Some(',' | '.' | ':' | '，' | '．' | '。' | '：') => rest = it.as_str(),
                _ => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_break_is_one_and_blank_lines_go() {
        let text = "a\rb\r\rc\r\nd\n\ne\u{2028}f\u{2029}g\u{85}h\u{0B}i\u{0C}j\u{1C}k \n \t\nl";
        assert_eq!(
            lines(text),
            ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k ", "l"]
        );
        assert_eq!(lines("\r\n\r\n"), Vec::<&str>::new());
    }

    #[test]
    fn arrows_of_any_length_lose_their_hyphens() {
        assert_eq!(no_arrows("a --> b"), "a -> b");
        assert_eq!(no_arrows("a ---> b"), "a -> b");
        assert_eq!(no_arrows("------>"), "->");
        assert_eq!(no_arrows("a - > b -- > c"), "a -> b -> c");
        assert_eq!(no_arrows("->-->->"), "->->->");
        assert_eq!(no_arrows("a - b -- c >"), "a - b -- c >");
        assert_eq!(no_arrows("-"), "-");
        assert_eq!(no_arrows("x-- é"), "x-- é");
        for s in ["--->", "-->-->", "- - ->", "<!-- -->", "a-->b--->c"] {
            let out = no_arrows(s);
            assert!(!out.contains("-->") && !out.contains("- >"), "{s} -> {out}");
        }
    }

    #[test]
    fn vtt_escapes_and_keeps_everything_else() {
        assert_eq!(
            vtt("<b>a</b> --> & \u{202E}x"),
            "&lt;b&gt;a&lt;/b&gt; --&gt; &amp; \u{202E}x"
        );
        assert_eq!(vtt("one\r\rtwo"), "one\ntwo");
    }

    #[test]
    fn srt_never_holds_an_index_line_before_a_timestamp_line() {
        assert_eq!(
            srt("ok\n\n99\n00:00:05,000 ---> 00:00:09,000\nINJECTED"),
            "ok\n99 00:00:05,000 -> 00:00:09,000\nINJECTED"
        );
        assert_eq!(srt("1\n2\n3"), "1\n2\n3");
        assert_eq!(srt("Step\n2\n1.5.2 is out"), "Step\n2 1.5.2 is out");
        assert_eq!(srt("3\n1。2。3"), "3 1。2。3");
        assert_eq!(srt("12 apples\n00:00:01,000"), "12 apples\n00:00:01,000");
        assert!(is_index("-4.5 ") && is_index("7") && !is_index("") && !is_index("1.2.3"));
        assert!(starts_like_timestamp(" 00:00:05,000 x") && !starts_like_timestamp("00:00"));
    }
}
