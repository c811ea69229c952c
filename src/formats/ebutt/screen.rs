//! The screen of an EBU-TT Live sequence: which rows of its documents become lines (once) and
//! which row is the line in progress.

/// What a new document changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown {
    /// Lines to commit, in order.
    pub finals: Vec<String>,
    /// The line in progress now (empty: none), when it changed.
    pub partial: Option<String>,
}

/// The screen of one sequence: which rows of the last document were committed and which row
/// is the line in progress.
///
/// Each document carries the complete current screen. Its **last row is the line in
/// progress** (a partial); **every row above it is complete** and is committed once, however
/// many documents keep showing it (rows are recognised by their text). The previous line in
/// progress is committed when the new document does not continue it, that is when no new row
/// (the first one not committed yet) equals it or starts with it: it was replaced or cleared.
/// So an empty document (a clear) commits the line in progress.
///
/// This fits the ways live producers fill a screen: a growing line ("Good" → "Good evening"),
/// rows that roll up (`[A, B…]` → `[B, C…]`: A and B committed once each), and whole
/// subtitles replaced by the next one. Rows, not `xml:id`s, identify lines because producers
/// do not keep ids stable: some number every document afresh, others reuse one id for every
/// subtitle.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Screen {
    /// Rows of the last document that are committed (all but its last).
    committed: Vec<String>,
    /// The last row of the last document, not committed yet.
    in_progress: Option<String>,
}

impl Screen {
    /// The line in progress (empty: none).
    pub fn in_progress(&self) -> &str {
        self.in_progress.as_deref().unwrap_or("")
    }

    /// Shows the rows of a new document.
    pub fn show(&mut self, rows: &[String]) -> Shown {
        let before = self.in_progress().to_string();
        let mut already = std::mem::take(&mut self.committed);
        let mut fresh = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            if let Some(k) = already.iter().position(|a| a == row) {
                // Still on screen and committed: never again.
                already.swap_remove(k);
                self.committed.push(row.clone());
            } else {
                fresh.push(i);
            }
        }
        let mut finals = Vec::new();
        if let Some(prev) = self.in_progress.take() {
            let continued = fresh
                .first()
                .is_some_and(|&i| rows[i].starts_with(prev.as_str()));
            if !continued {
                finals.push(prev);
            }
        }
        let last = rows.len().checked_sub(1);
        for &i in &fresh {
            if Some(i) == last {
                self.in_progress = Some(rows[i].clone());
            } else {
                finals.push(rows[i].clone());
                self.committed.push(rows[i].clone());
            }
        }
        let now = self.in_progress();
        Shown {
            partial: (now != before).then(|| now.to_string()),
            finals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(s: &mut Screen, rows: &[&str]) -> (Vec<String>, Option<String>) {
        let rows: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        let shown = s.show(&rows);
        (shown.finals, shown.partial)
    }

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_growing_line_is_a_partial_until_replaced_or_cleared() {
        let mut s = Screen::default();
        assert_eq!(show(&mut s, &["Good"]), (v(&[]), Some("Good".into())));
        assert_eq!(
            show(&mut s, &["Good evening"]),
            (v(&[]), Some("Good evening".into()))
        );
        // A refresh of the same screen changes nothing.
        assert_eq!(show(&mut s, &["Good evening"]), (v(&[]), None));
        // A new subtitle that does not continue the line commits it first.
        assert_eq!(
            show(&mut s, &["Welcome"]),
            (v(&["Good evening"]), Some("Welcome".into()))
        );
        // A clear commits the line in progress.
        assert_eq!(show(&mut s, &[]), (v(&["Welcome"]), Some(String::new())));
        assert_eq!(show(&mut s, &[]), (v(&[]), None));
    }

    #[test]
    fn rows_above_the_last_are_committed_once_as_they_roll_up() {
        let mut s = Screen::default();
        assert_eq!(show(&mut s, &["A"]), (v(&[]), Some("A".into())));
        assert_eq!(show(&mut s, &["A", "B"]), (v(&["A"]), Some("B".into())));
        assert_eq!(
            show(&mut s, &["A", "B more"]),
            (v(&[]), Some("B more".into()))
        );
        assert_eq!(
            show(&mut s, &["B more", "C"]),
            (v(&["B more"]), Some("C".into()))
        );
        assert_eq!(
            show(&mut s, &["B more", "C", "D"]),
            (v(&["C"]), Some("D".into()))
        );
        assert_eq!(show(&mut s, &["D"]), (v(&[]), None));
        assert_eq!(show(&mut s, &[]), (v(&["D"]), Some(String::new())));
    }

    #[test]
    fn whole_subtitles_replaced_by_the_next() {
        let mut s = Screen::default();
        assert_eq!(
            show(&mut s, &["A red Word", "in a two row subtitle"]),
            (v(&["A red Word"]), Some("in a two row subtitle".into()))
        );
        assert_eq!(
            show(&mut s, &["Next one", "two rows"]),
            (
                v(&["in a two row subtitle", "Next one"]),
                Some("two rows".into())
            )
        );
        // The last row went away while the row above stays: it is committed, nothing is
        // in progress, and the committed row is not committed again.
        assert_eq!(
            show(&mut s, &["Next one"]),
            (v(&["two rows"]), Some(String::new()))
        );
        assert_eq!(show(&mut s, &["Next one"]), (v(&[]), None));
        assert_eq!(show(&mut s, &[]), (v(&[]), None));
    }

    #[test]
    fn the_example_of_the_integration_guide() {
        // docs/integrations.md, "What becomes a line".
        let mut s = Screen::default();
        assert_eq!(show(&mut s, &["Good"]), (v(&[]), Some("Good".into())));
        assert_eq!(
            show(&mut s, &["Good evening"]),
            (v(&[]), Some("Good evening".into()))
        );
        assert_eq!(
            show(&mut s, &["Good evening", "and welcome to"]),
            (v(&["Good evening"]), Some("and welcome to".into()))
        );
        assert_eq!(
            show(&mut s, &["and welcome to the", "news"]),
            (v(&["and welcome to the"]), Some("news".into()))
        );
        assert_eq!(
            show(&mut s, &["Tom & Jerry"]),
            (v(&["news"]), Some("Tom & Jerry".into()))
        );
        assert_eq!(
            show(&mut s, &[]),
            (v(&["Tom & Jerry"]), Some(String::new()))
        );
    }

    #[test]
    fn a_rewritten_line_in_progress_is_committed_as_it_was() {
        let mut s = Screen::default();
        show(&mut s, &["I scream"]);
        assert_eq!(
            show(&mut s, &["Ice cream"]),
            (v(&["I scream"]), Some("Ice cream".into()))
        );
    }
}
