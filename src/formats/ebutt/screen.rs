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
/// A line in progress can also be committed while it is still on screen ([`Screen::settle`]:
/// the producer went quiet, its timing passed, it disconnected). The screen then keeps it as
/// committed: a later document showing it again commits nothing, and one whose row continues
/// it ("Good evening" → "Good evening and welcome") commits only the rest ("and welcome").
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
    /// The start of `in_progress` that is committed already (it continues a settled line).
    #[serde(default)]
    done: Option<String>,
    /// The line in progress last committed by [`Screen::settle`], while still on screen.
    #[serde(default)]
    settled: Option<String>,
}

/// What of `row` is not committed yet when `done` (its start) is.
fn rest(row: &str, done: Option<&str>) -> String {
    match done.and_then(|d| row.strip_prefix(d)) {
        Some(r) => r.trim_start().to_string(),
        None => row.to_string(),
    }
}

/// Adds a line to commit unless it is blank.
fn push(finals: &mut Vec<String>, line: String) {
    if !line.trim().is_empty() {
        finals.push(line);
    }
}

impl Screen {
    /// The last row shown, if it is the line in progress (empty: none).
    pub fn in_progress(&self) -> &str {
        self.in_progress.as_deref().unwrap_or("")
    }

    /// The line in progress as listeners see it: what of it is not committed yet.
    pub fn partial(&self) -> String {
        rest(self.in_progress(), self.done.as_deref())
    }

    /// Commits the line in progress while it stays on screen (see the type's docs).
    pub fn settle(&mut self) -> Shown {
        let Some(row) = self.in_progress.take() else {
            return Shown::default();
        };
        let mut finals = Vec::new();
        push(&mut finals, rest(&row, self.done.take().as_deref()));
        self.committed.push(row.clone());
        self.settled = Some(row);
        Shown {
            finals,
            partial: Some(String::new()),
        }
    }

    /// Shows the rows of a new document.
    pub fn show(&mut self, rows: &[String]) -> Shown {
        let before = self.partial();
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
        let done = self.done.take();
        let settled = self.settled.take();
        // The fresh row that continues a line whose start is committed already, and that start.
        let mut carried: Option<(usize, String)> = None;
        let continuing = |line: &str| {
            fresh
                .first()
                .copied()
                .filter(|&i| rows[i].starts_with(line))
        };
        if let Some(prev) = self.in_progress.take() {
            match continuing(&prev) {
                Some(i) => carried = done.map(|d| (i, d)),
                None => push(&mut finals, rest(&prev, done.as_deref())),
            }
        }
        if let Some(s) = settled {
            if self.committed.contains(&s) {
                self.settled = Some(s); // still on screen, as it was
            } else if carried.is_none() {
                carried = continuing(&s).map(|i| (i, s));
            }
        }
        let last = rows.len().checked_sub(1);
        for &i in &fresh {
            let prefix = carried
                .as_ref()
                .filter(|(j, _)| *j == i)
                .map(|(_, p)| p.clone());
            if Some(i) == last {
                self.in_progress = Some(rows[i].clone());
                self.done = prefix;
            } else {
                push(&mut finals, rest(&rows[i], prefix.as_deref()));
                self.committed.push(rows[i].clone());
            }
        }
        let now = self.partial();
        Shown {
            partial: (now != before).then_some(now),
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
    fn a_settled_line_is_committed_once_and_only_its_continuation_follows() {
        let mut s = Screen::default();
        show(&mut s, &["Good evening"]);
        let settled = s.settle();
        assert_eq!(settled.finals, v(&["Good evening"]));
        assert_eq!(settled.partial.as_deref(), Some(""));
        assert_eq!(s.settle(), Shown::default(), "nothing left to settle");
        // The same screen again (a refresh) commits nothing.
        assert_eq!(show(&mut s, &["Good evening"]), (v(&[]), None));
        s.settle();
        // A continuation shows and commits only what is new.
        assert_eq!(
            show(&mut s, &["Good evening and welcome"]),
            (v(&[]), Some("and welcome".into()))
        );
        assert_eq!(
            show(&mut s, &["Good evening and welcome to"]),
            (v(&[]), Some("and welcome to".into()))
        );
        assert_eq!(
            show(&mut s, &["Good evening and welcome to", "the news"]),
            (v(&["and welcome to"]), Some("the news".into()))
        );
        // Settled twice over: the second settle commits only the rest.
        s.settle();
        assert_eq!(
            show(&mut s, &["Good evening and welcome to", "the news tonight"]),
            (v(&[]), Some("tonight".into()))
        );
        assert_eq!(s.settle().finals, v(&["tonight"]));
        assert_eq!(show(&mut s, &[]), (v(&[]), None));
        // A settled row above the last is never committed again either.
        let mut s = Screen::default();
        show(&mut s, &["A"]);
        s.settle();
        assert_eq!(show(&mut s, &["A", "B"]), (v(&[]), Some("B".into())));
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
