//! A forwarder's saved position (channel seq handled, remote seq, and the post in flight, if
//! any) in `storage.dir/forward/`, one small file per forwarder and URL: a restart resumes where it stopped, a new URL (a new
//! meeting or stream) starts from the lines committed from then on. In cluster mode the
//! position is also kept in the cluster's booth bucket, so the node that takes over the
//! forwarding lease continues where the last holder stopped (the furthest of the two wins).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use super::Forwarder;
use crate::hub::Hub;

/// A copy of every forwarder's position kept outside this node: in a cluster, the cluster's
/// bucket, so the node that takes the forwarding lease over continues where the last holder
/// stopped. Values are the saved text of a [`Position`]; the furthest one wins.
pub trait PositionMirror: Send + Sync {
    /// The position saved under `name`, if any.
    fn load<'a>(
        &'a self,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>>;
    /// Saves `value` (whose channel seq handled is `cursor`) under `name`, never moving a
    /// further saved position back.
    fn save<'a>(
        &'a self,
        name: &'a str,
        cursor: u64,
        value: String,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

/// Folder (inside `storage.dir`) of the forwarders' saved positions.
const STATE_DIR: &str = "forward";

/// Where a forwarder was: the channel seq handled and the remote's seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    pub cursor: u64,
    pub remote_seq: u64,
    /// The post that had started and not yet been answered: saved before every post, so a
    /// forwarder killed mid-request knows after a restart which line may have reached the
    /// remote, under which seq (`forward/recover.rs`).
    pub in_flight: Option<InFlight>,
}

/// A line being posted: its channel seq and the remote seq it was posted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InFlight {
    pub line: u64,
    pub seq: u64,
}

/// 64-bit FNV-1a, naming a forwarder's state file after its URL.
fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A forwarder's name: its event, channel, index, kind and URL (hashed).
fn name(f: &Forwarder) -> String {
    format!(
        "{}-{}-{}-{}-{:016x}",
        f.event,
        f.channel,
        f.index,
        f.kind.as_str(),
        fnv64(&f.url)
    )
}

/// The file of a forwarder's position (`None` if the store has no directory).
pub(super) fn state_path(hub: &Hub, f: &Forwarder) -> Option<PathBuf> {
    let dir = hub.store.path().parent()?.join(STATE_DIR);
    Some(dir.join(format!("{}.pos", name(f))))
}

/// Reads `cursor remote_seq [line seq]` (files written before posts in flight were saved have
/// the first two numbers only).
fn parse(text: &str) -> Option<Position> {
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().ok());
    let cursor = it.next()??;
    let remote_seq = it.next()??;
    let in_flight = match (it.next(), it.next()) {
        (Some(line), Some(seq)) => Some(InFlight {
            line: line?,
            seq: seq?,
        }),
        _ => None,
    };
    Some(Position {
        cursor,
        remote_seq,
        in_flight,
    })
}

fn format(p: Position) -> String {
    match p.in_flight {
        Some(i) => format!("{} {} {} {}\n", p.cursor, p.remote_seq, i.line, i.seq),
        None => format!("{} {}\n", p.cursor, p.remote_seq),
    }
}

/// The saved position, if any: the file's, or in cluster mode the cluster's if it is further.
pub(super) async fn load_position(
    f: &Forwarder,
    path: &Option<PathBuf>,
    mirror: Option<&dyn PositionMirror>,
) -> Option<Position> {
    let local = match path {
        Some(path) => tokio::fs::read_to_string(path)
            .await
            .ok()
            .and_then(|t| parse(&t)),
        None => None,
    };
    let shared = match mirror {
        Some(m) => m.load(&name(f)).await.and_then(|t| parse(&t)),
        None => None,
    };
    local.into_iter().chain(shared).max_by_key(|p| p.cursor)
}

/// Saves the position (write, then rename: a crash leaves the old or the new one), and in
/// cluster mode in the cluster too.
pub(super) async fn save_position(
    f: &Forwarder,
    path: &Option<PathBuf>,
    mirror: Option<&dyn PositionMirror>,
    p: Position,
) {
    if let Some(m) = mirror {
        m.save(&name(f), p.cursor, format(p)).await;
    }
    let Some(path) = path else { return };
    let tmp = path.with_extension("tmp");
    let write = async {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::write(&tmp, format(p)).await?;
        tokio::fs::rename(&tmp, path).await
    };
    if let Err(e) = write.await {
        tracing::warn!(error = %e, path = %path.display(), "cannot save the forwarder position");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_with_and_without_a_post_in_flight() {
        let plain = Position {
            cursor: 7,
            remote_seq: 42,
            in_flight: None,
        };
        assert_eq!(format(plain), "7 42\n");
        assert_eq!(parse(&format(plain)), Some(plain));
        let posting = Position {
            in_flight: Some(InFlight { line: 9, seq: 43 }),
            ..plain
        };
        assert_eq!(format(posting), "7 42 9 43\n");
        assert_eq!(parse(&format(posting)), Some(posting));
        assert_eq!(parse("7"), None);
        assert_eq!(parse("7 x"), None);
        assert_eq!(parse("7 42 9 x"), None);
    }
}
