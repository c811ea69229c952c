//! StreamText's "caption URL": StreamText posts `{caption URL}&seq=N&lang=en` with a
//! `text/plain` body holding everything typed since its last successful post, a stream in
//! which backspace (0x08) and delete (0x7f) remove the previous character and CR/LF ends a
//! line. Ingest applies it with [`super::line::LineBuffer`] with corrections on.

use super::line::{Applied, LineBuffer};

/// StreamText bodies carry corrections.
pub const CORRECTIONS: bool = true;

/// Applies one StreamText body to the line in progress.
pub fn apply(line: &mut LineBuffer, body: &str, max_chars: usize) -> Applied {
    line.push(body, CORRECTIONS, max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example() {
        let mut line = LineBuffer::default();
        let a = apply(
            &mut line,
            "This is a test\nWith 2 lins\u{8}es and a delete character",
            4000,
        );
        assert_eq!(a.finals, ["This is a test"]);
        assert_eq!(line.line(), "With 2 lines and a delete character");
        let a = apply(
            &mut line,
            "\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}word.\r\n",
            4000,
        );
        assert_eq!(a.finals, ["With 2 lines and a delete word."]);
    }
}
