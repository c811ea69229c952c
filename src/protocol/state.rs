//! [`EventState`]: where an event is in its life, as the `status` message, the event list
//! and the admin API name it, and the refusal of a line in each state.

use serde::{Deserialize, Serialize};

use super::{ErrorCode, Refusal};

/// Where an event is in its life: `scheduled` (not started yet), `live`, `ended` (no new
/// lines; the transcript stays), `archived` (only a published transcript remains).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    Scheduled,
    #[default]
    Live,
    Ended,
    Archived,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Scheduled => "scheduled",
            EventState::Live => "live",
            EventState::Ended => "ended",
            EventState::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<EventState> {
        Some(match s {
            "scheduled" => EventState::Scheduled,
            "live" => EventState::Live,
            "ended" => EventState::Ended,
            "archived" => EventState::Archived,
            _ => return None,
        })
    }

    pub fn is_live(&self) -> bool {
        *self == EventState::Live
    }

    /// Whether the event is over (ended or archived).
    pub fn is_over(self) -> bool {
        matches!(self, EventState::Ended | EventState::Archived)
    }

    /// Why a line is refused in this state (`None`: live, lines are taken).
    pub fn refusal(self) -> Option<Refusal> {
        match self {
            EventState::Live => None,
            EventState::Scheduled => Some(Refusal::new(
                ErrorCode::EventNotStarted,
                "this event has not started yet: nothing is published before its start",
            )),
            EventState::Ended => Some(Refusal::new(
                ErrorCode::EventEnded,
                "this event has ended: it takes no new lines (its transcript stays available)",
            )),
            EventState::Archived => Some(Refusal::new(
                ErrorCode::EventArchived,
                "this event is archived: it takes no new lines",
            )),
        }
    }
}
