//! A forwarder's saved position (channel seq handled, remote seq) in `storage.dir/forward/`,
//! one small file per forwarder and URL: a restart resumes where it stopped, a new URL (a new
//! meeting or stream) starts from the lines committed from then on.

use std::path::PathBuf;

use super::Forwarder;
use crate::hub::Hub;

/// Folder (inside `storage.dir`) of the forwarders' saved positions.
const STATE_DIR: &str = "forward";

/// Where a forwarder was: the channel seq handled and the remote's seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    pub cursor: u64,
    pub remote_seq: u64,
}

/// 64-bit FNV-1a, naming a forwarder's state file after its URL.
fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The file of a forwarder's position (`None` if the store has no directory).
pub(super) fn state_path(hub: &Hub, f: &Forwarder) -> Option<PathBuf> {
    let dir = hub.store.path().parent()?.join(STATE_DIR);
    Some(dir.join(format!(
        "{}-{}-{}-{}-{:016x}.pos",
        f.event,
        f.channel,
        f.index,
        f.kind.as_str(),
        fnv64(&f.url)
    )))
}

/// The saved position, if any.
pub(super) async fn load_position(path: &Option<PathBuf>) -> Option<Position> {
    let text = tokio::fs::read_to_string(path.as_ref()?).await.ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().ok());
    Some(Position {
        cursor: it.next()??,
        remote_seq: it.next()??,
    })
}

/// Saves the position (write, then rename: a crash leaves the old or the new one).
pub(super) async fn save_position(path: &Option<PathBuf>, p: Position) {
    let Some(path) = path else { return };
    let tmp = path.with_extension("tmp");
    let write = async {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::write(&tmp, format!("{} {}\n", p.cursor, p.remote_seq)).await?;
        tokio::fs::rename(&tmp, path).await
    };
    if let Err(e) = write.await {
        tracing::warn!(error = %e, path = %path.display(), "cannot save the forwarder position");
    }
}
