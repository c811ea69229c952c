//! The definitions of events and channels, wherever they come from: the config file
//! (read-only at run time) or the organisers' dashboard (kept in the store). Pure data and
//! the rules every definition obeys (ids, sources without cycles, schedules), so the config
//! check, the admin API and a definition arriving from another cluster node refuse the same
//! things with the same codes.
//!
//! How the two kinds combine (docs/organisers.md): the file's events come first, in file
//! order, and cannot be changed from the dashboard; stored events follow in creation order;
//! an id is either the file's or the store's, never both (the file wins at start, the
//! stored one is then ignored and logged).

use crate::config::EventConfig;
use crate::protocol::{ErrorCode, EventState, Refusal, MAX_NAME_CHARS};

/// Longest event title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest access code, in characters (as the config file allows).
pub const MAX_ACCESS_CODE_CHARS: usize = 128;
/// Most channels in one event.
pub const MAX_CHANNELS: usize = 64;

/// Where a definition comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `[[events]]` of the config file: read-only at run time.
    File,
    /// Made in the dashboard or the admin API: kept in the store.
    Stored,
}

/// One language stream of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelDef {
    pub id: String,
    /// BCP-47 primary tag or `auto`.
    pub lang: String,
    /// Shown in pickers; empty: the language's own name.
    pub label: String,
    /// The channel this one is interpreted from (the floor or a pivot).
    pub source: Option<String>,
    /// Whether an interpreter works on it (feedback to the booth, silent-booth alerts); a
    /// caption channel of the floor is not interpreted.
    pub interpreted: bool,
    /// Overrides `booth.takeover_after_secs` (0: handover by request only).
    pub takeover_after_secs: Option<u64>,
}

/// One event (a conference, a session, a hall) and its channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDef {
    pub id: String,
    pub title: String,
    /// Attendees need it to listen and to read transcripts (unless the transcript is
    /// published).
    pub access_code: Option<String>,
    /// Unix ms; before it the event is `scheduled` (unless started by hand).
    pub starts_at: Option<i64>,
    /// Unix ms; from it the event is `ended`.
    pub ends_at: Option<i64>,
    /// What the organiser decided: `scheduled` (follow the schedule), `live` (started by
    /// hand), `ended`, `archived`. See [`EventDef::state`].
    pub phase: EventState,
    /// The read-only transcript page is public (no access code or token needed).
    pub transcript_public: bool,
    pub channels: Vec<ChannelDef>,
    pub origin: Origin,
    /// Bumped on every change (0 for the file's events).
    pub rev: u64,
}

impl EventDef {
    /// The config file's event.
    pub fn from_config(ev: &EventConfig) -> EventDef {
        EventDef {
            id: ev.id.get_ref().clone(),
            title: ev.title.clone(),
            access_code: ev.access_code.clone(),
            starts_at: None,
            ends_at: None,
            phase: EventState::Live,
            transcript_public: false,
            channels: ev
                .channels
                .iter()
                .map(|c| ChannelDef {
                    id: c.id.get_ref().clone(),
                    lang: c.lang.get_ref().clone(),
                    label: c.label.clone(),
                    source: c.source.as_ref().map(|s| s.get_ref().clone()),
                    interpreted: c.source.is_some(),
                    takeover_after_secs: c.takeover_after_secs,
                })
                .collect(),
            origin: Origin::File,
            rev: 0,
        }
    }

    /// The state the event is in at `now` (Unix ms): the organiser's decision, then the
    /// schedule.
    pub fn state(&self, now: i64) -> EventState {
        let ended = self.ends_at.is_some_and(|e| now >= e);
        match self.phase {
            EventState::Archived => EventState::Archived,
            EventState::Ended => EventState::Ended,
            _ if ended => EventState::Ended,
            EventState::Live => EventState::Live,
            EventState::Scheduled if self.starts_at.is_some_and(|s| now < s) => {
                EventState::Scheduled
            }
            EventState::Scheduled => EventState::Live,
        }
    }

    pub fn channel(&self, id: &str) -> Option<&ChannelDef> {
        self.channels.iter().find(|c| c.id == id)
    }

    /// Every rule of a definition, checked as a whole (the first problem found).
    pub fn check(&self) -> Result<(), Refusal> {
        check_id("event id", &self.id)?;
        if self.title.chars().count() > MAX_TITLE_CHARS {
            return Err(bad_field(format!(
                "title: at most {MAX_TITLE_CHARS} characters"
            )));
        }
        if let Some(code) = &self.access_code {
            if code.trim().is_empty() || code.chars().count() > MAX_ACCESS_CODE_CHARS {
                return Err(bad_field(format!(
                    "access_code: 1-{MAX_ACCESS_CODE_CHARS} characters (null for an open event)"
                )));
            }
        }
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at) {
            if e <= s {
                return Err(bad_field("ends_at: must be after starts_at"));
            }
        }
        if self.channels.len() > MAX_CHANNELS {
            return Err(bad_field(format!(
                "channels: at most {MAX_CHANNELS} per event"
            )));
        }
        for (i, c) in self.channels.iter().enumerate() {
            check_channel(c)?;
            if self.channels[..i].iter().any(|o| o.id == c.id) {
                return Err(Refusal::new(
                    ErrorCode::DuplicateId,
                    format!("event {:?} already has a channel {:?}", self.id, c.id),
                ));
            }
        }
        for c in &self.channels {
            if let Some(src) = &c.source {
                if src == &c.id {
                    return Err(Refusal::new(
                        ErrorCode::SourceCycle,
                        format!("channel {:?} cannot be its own source", c.id),
                    ));
                }
                if self.channel(src).is_none() {
                    return Err(Refusal::new(
                        ErrorCode::UnknownSource,
                        format!(
                            "source {src:?} of channel {:?} is not a channel of event {:?}",
                            c.id, self.id
                        ),
                    ));
                }
            }
        }
        if let Some(c) = self.cycle() {
            return Err(Refusal::new(
                ErrorCode::SourceCycle,
                format!("the sources of channel {c:?} lead back to it (a relay cycle)"),
            ));
        }
        Ok(())
    }

    /// A channel whose sources lead back to it, if any.
    fn cycle(&self) -> Option<&str> {
        for start in &self.channels {
            let mut at = start;
            for _ in 0..self.channels.len() {
                let Some(next) = at.source.as_deref().and_then(|s| self.channel(s)) else {
                    break;
                };
                if next.id == start.id {
                    return Some(&start.id);
                }
                at = next;
            }
        }
        None
    }
}

fn bad_field(message: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::BadField, message)
}

/// Whether `id` is 1-64 of `a-z 0-9 - _` (event, channel and credential ids).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Refuses an id that is not 1-64 of `a-z 0-9 - _`, naming `what`.
pub fn check_id(what: &str, id: &str) -> Result<(), Refusal> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::BadId,
            format!("{what} {id:?} must be 1-64 characters of a-z, 0-9, '-' or '_'"),
        ))
    }
}

/// The rules of one channel on its own (its id, language and label).
pub fn check_channel(c: &ChannelDef) -> Result<(), Refusal> {
    check_id("channel id", &c.id)?;
    if c.lang != "auto" && !crate::langid::is_known_tag(&c.lang) {
        return Err(bad_field(format!(
            "lang: {:?} is not a BCP-47 primary tag (like \"en\", \"zh\") or \"auto\"",
            c.lang
        )));
    }
    if c.label.chars().count() > MAX_NAME_CHARS {
        return Err(bad_field(format!(
            "label: at most {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(id: &str, source: Option<&str>) -> ChannelDef {
        ChannelDef {
            id: id.into(),
            lang: "en".into(),
            label: String::new(),
            source: source.map(Into::into),
            interpreted: source.is_some(),
            takeover_after_secs: None,
        }
    }

    fn ev(channels: Vec<ChannelDef>) -> EventDef {
        EventDef {
            id: "e".into(),
            title: "E".into(),
            access_code: None,
            starts_at: None,
            ends_at: None,
            phase: EventState::Scheduled,
            transcript_public: false,
            channels,
            origin: Origin::Stored,
            rev: 1,
        }
    }

    #[test]
    fn refusals_have_their_codes() {
        let code = |e: EventDef| e.check().unwrap_err().code;
        assert!(ev(vec![ch("floor", None), ch("en", Some("floor"))])
            .check()
            .is_ok());
        assert_eq!(code(ev(vec![ch("Bad", None)])), ErrorCode::BadId);
        assert_eq!(
            code(ev(vec![ch("a", None), ch("a", None)])),
            ErrorCode::DuplicateId
        );
        assert_eq!(
            code(ev(vec![ch("a", Some("zz"))])),
            ErrorCode::UnknownSource
        );
        assert_eq!(code(ev(vec![ch("a", Some("a"))])), ErrorCode::SourceCycle);
        assert_eq!(
            code(ev(vec![
                ch("a", Some("b")),
                ch("b", Some("c")),
                ch("c", Some("a"))
            ])),
            ErrorCode::SourceCycle
        );
        let mut e = ev(vec![]);
        e.starts_at = Some(10);
        e.ends_at = Some(5);
        assert_eq!(code(e), ErrorCode::BadField);
    }

    #[test]
    fn the_state_follows_decision_then_schedule() {
        let mut e = ev(vec![]);
        assert_eq!(e.state(0), EventState::Live);
        e.starts_at = Some(100);
        e.ends_at = Some(200);
        assert_eq!(e.state(99), EventState::Scheduled);
        assert_eq!(e.state(100), EventState::Live);
        assert_eq!(e.state(200), EventState::Ended);
        e.phase = EventState::Live; // started by hand
        assert_eq!(e.state(50), EventState::Live);
        assert_eq!(e.state(250), EventState::Ended);
        e.phase = EventState::Ended;
        assert_eq!(e.state(150), EventState::Ended);
        e.phase = EventState::Archived;
        assert_eq!(e.state(150), EventState::Archived);
    }
}
