//! The line in progress of a text stream (Zoom posts, StreamText posts, `babelcast push`
//! stdin): text is appended, CR, LF or CRLF commits the line, backspace (0x08) and delete
//! (0x7f) remove the last character when corrections are on.

/// Backspace, as CART software sends it.
pub const BACKSPACE: char = '\u{8}';
/// Delete, which StreamText sends for the same correction.
pub const DELETE: char = '\u{7f}';

/// What one piece of input did to the line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Lines committed by this input, in order (whitespace-only lines are dropped).
    pub finals: Vec<String>,
    /// Whether the line in progress differs from before.
    pub changed: bool,
}

/// The line in progress.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LineBuffer {
    line: String,
    /// Characters in `line` (kept so the length bound costs nothing per character).
    chars: usize,
    /// The last character seen was a CR: a LF right after it belongs to the same break.
    after_cr: bool,
}

impl LineBuffer {
    /// A buffer whose line in progress is `line` (restored after a restart).
    pub fn with_line(line: &str) -> LineBuffer {
        LineBuffer {
            line: line.to_string(),
            chars: line.chars().count(),
            after_cr: false,
        }
    }

    /// The line in progress.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Applies `input`. With `corrections`, backspace and delete remove the last character
    /// of the line in progress (a committed line is never changed); without, they are
    /// dropped like other control characters (tab is kept). A line that would grow past
    /// `max_chars` is committed at its last space (or cut there when it has none), so no line
    /// is ever too long to store.
    pub fn push(&mut self, input: &str, corrections: bool, max_chars: usize) -> Applied {
        let max_chars = max_chars.max(1);
        let before = self.line.clone();
        let mut out = Applied::default();
        for c in input.chars() {
            match c {
                '\n' if self.after_cr => self.after_cr = false,
                '\r' | '\n' => {
                    self.after_cr = c == '\r';
                    self.commit(&mut out.finals);
                }
                BACKSPACE | DELETE if corrections => {
                    self.after_cr = false;
                    if self.line.pop().is_some() {
                        self.chars -= 1;
                    }
                }
                c if c.is_control() && c != '\t' => self.after_cr = false,
                c => {
                    self.after_cr = false;
                    if self.chars == max_chars {
                        self.wrap(&mut out.finals);
                    }
                    self.line.push(c);
                    self.chars += 1;
                }
            }
        }
        // A commit clears the partial listeners see, so it counts as a change too.
        out.changed = self.line != before || !out.finals.is_empty();
        out
    }

    /// Applies one chunk of a stream whose senders may post one caption per chunk with no
    /// line break (Zoom): a chunk that continues a line in progress is joined with a space
    /// when neither the line's end nor the chunk's start is whitespace, so captions posted
    /// one per request are not glued together.
    pub fn push_chunk(&mut self, input: &str, corrections: bool, max_chars: usize) -> Applied {
        let glued = self
            .line
            .chars()
            .next_back()
            .is_some_and(|c| !c.is_whitespace())
            && input.chars().next().is_some_and(|c| !c.is_whitespace());
        if glued {
            let spaced = format!(" {input}");
            self.push(&spaced, corrections, max_chars)
        } else {
            self.push(input, corrections, max_chars)
        }
    }

    /// Commits the line in progress as it is (its stream went quiet, ended or was replaced):
    /// the line, if it has any text, and an empty line in progress.
    pub fn commit_line(&mut self) -> Option<String> {
        let mut finals = Vec::new();
        self.after_cr = false;
        self.commit(&mut finals);
        finals.pop()
    }

    /// Commits the whole line in progress.
    fn commit(&mut self, finals: &mut Vec<String>) {
        let line = std::mem::take(&mut self.line);
        self.chars = 0;
        if !line.trim().is_empty() {
            finals.push(line);
        }
    }

    /// The line is full: commit it up to its last whitespace and keep the rest.
    fn wrap(&mut self, finals: &mut Vec<String>) {
        let cut = self
            .line
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map(|(i, c)| (i, i + c.len_utf8()))
            .filter(|(i, _)| *i > 0);
        let (head, rest) = match cut {
            Some((end, start)) => (
                self.line[..end].trim_end().to_string(),
                self.line[start..].to_string(),
            ),
            None => (std::mem::take(&mut self.line), String::new()),
        };
        if !head.trim().is_empty() {
            finals.push(head);
        }
        self.chars = rest.chars().count();
        self.line = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(b: &mut LineBuffer, s: &str) -> Vec<String> {
        b.push(s, true, 4000).finals
    }

    #[test]
    fn appends_and_commits_on_any_line_break() {
        let mut b = LineBuffer::default();
        assert!(push(&mut b, "I'M SENDING ").is_empty());
        assert_eq!(b.line(), "I'M SENDING ");
        assert_eq!(
            push(&mut b, "SEVERAL CAPTIONS.\nNext"),
            ["I'M SENDING SEVERAL CAPTIONS."]
        );
        assert_eq!(b.line(), "Next");
        assert_eq!(
            push(&mut b, " one\r\nthen\rlast\n"),
            ["Next one", "then", "last"]
        );
        assert_eq!(b.line(), "");
    }

    #[test]
    fn chunks_without_whitespace_are_joined_with_a_space() {
        let mut b = LineBuffer::default();
        b.push_chunk("Hello there.", false, 4000);
        b.push_chunk("How are you?", false, 4000);
        assert_eq!(b.line(), "Hello there. How are you?");
        // Whitespace on either side, or a line break, is the sender's own.
        b.push_chunk(" Fine", false, 4000);
        b.push_chunk("\nthanks ", false, 4000);
        b.push_chunk("a lot", false, 4000);
        assert_eq!(b.line(), "thanks a lot");
        assert_eq!(b.commit_line().as_deref(), Some("thanks a lot"));
        assert_eq!(b.line(), "");
        assert_eq!(b.commit_line(), None, "an empty line commits nothing");
        b.push_chunk("  ", false, 4000);
        assert_eq!(b.commit_line(), None, "nor does a blank one");
    }

    #[test]
    fn crlf_split_across_posts_is_one_break() {
        let mut b = LineBuffer::default();
        assert_eq!(push(&mut b, "a\r"), ["a"]);
        assert!(push(&mut b, "\nb").is_empty());
        assert_eq!(b.line(), "b");
    }

    #[test]
    fn blank_lines_are_not_committed() {
        let mut b = LineBuffer::default();
        assert_eq!(push(&mut b, "\n\n  \nx\n\n"), ["x"]);
    }

    #[test]
    fn backspace_and_delete_correct_the_line_in_progress() {
        let mut b = LineBuffer::default();
        assert_eq!(
            push(
                &mut b,
                "This is a test\nWith 2 lins\u{8}es and a delete character"
            ),
            ["This is a test"]
        );
        assert_eq!(b.line(), "With 2 lines and a delete character");
        push(&mut b, &format!("{}word", "\u{7f}".repeat(9)));
        assert_eq!(b.line(), "With 2 lines and a delete word");
        // Never into a committed line; multi-byte characters are removed whole.
        let mut b = LineBuffer::default();
        push(&mut b, "ok\n你好\u{8}\u{8}\u{8}\u{8}");
        assert_eq!(b.line(), "");
    }

    #[test]
    fn without_corrections_control_characters_are_dropped() {
        let mut b = LineBuffer::default();
        let a = b.push("ab\u{8}c\u{0}\td", false, 100);
        assert!(a.finals.is_empty() && a.changed);
        assert_eq!(b.line(), "abc\td");
    }

    #[test]
    fn long_lines_wrap_at_a_space() {
        let mut b = LineBuffer::default();
        let a = b.push("one two three four", false, 10);
        assert_eq!(a.finals, ["one two"]);
        assert_eq!(b.line(), "three four");
        let mut b = LineBuffer::default();
        let a = b.push("abcdefghijkl", false, 5);
        assert_eq!(a.finals, ["abcde", "fghij"]);
        assert_eq!(b.line(), "kl");
    }

    #[test]
    fn every_committed_line_fits_and_nothing_is_lost() {
        // A cheap property check over many shapes of input.
        let pieces = [
            "a", "bb ", "ccc", " ", "\n", "\r", "\r\n", "é", "你好 ", "\u{8}",
        ];
        for seed in 0..500u32 {
            let mut b = LineBuffer::default();
            let mut all = String::new();
            let mut x = seed;
            let mut committed = Vec::new();
            for _ in 0..40 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let p = pieces[(x >> 16) as usize % pieces.len()];
                if p != "\u{8}" {
                    all.push_str(p);
                }
                committed.extend(b.push(p, false, 7).finals);
            }
            for f in &committed {
                assert!(f.chars().count() <= 7, "{f:?}");
                assert!(!f.contains(['\n', '\r']));
            }
            let kept: String = committed.concat() + b.line();
            let non_space = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
            assert_eq!(non_space(&kept), non_space(&all));
        }
    }
}
