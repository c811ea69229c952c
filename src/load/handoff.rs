//! Runs spread over several `babelcast load` processes (more listeners than one process has
//! file descriptors for, listeners on several cluster nodes): the file a listening process
//! writes once its listeners are connected, and the file the publishing run's last seqs are
//! handed to the listening ones in.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// How often a listening process looks for the target file.
const POLL: Duration = Duration::from_millis(100);

/// Says that every listener is connected (and the server's idle memory read).
pub(super) fn mark_ready(path: &Path) {
    if let Err(e) = std::fs::write(path, b"ready\n") {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the ready file");
    }
}

/// The channels' last seqs from `path` (comma-separated, one per channel), once it exists
/// and is complete; `None` after `timeout` or when the run stops.
pub(super) async fn wait_target(
    path: &Path,
    channels: usize,
    timeout: Duration,
    stop: &CancellationToken,
) -> Option<Vec<u64>> {
    let until = Instant::now() + timeout;
    while Instant::now() < until && !stop.is_cancelled() {
        if let Some(seqs) = std::fs::read_to_string(path).ok().and_then(|s| parse(&s)) {
            if seqs.len() == channels {
                return Some(seqs);
            }
        }
        tokio::time::sleep(POLL).await;
    }
    None
}

fn parse(s: &str) -> Option<Vec<u64>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    s.split(',').map(|n| n.trim().parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_seq_per_channel() {
        assert_eq!(parse("61\n"), Some(vec![61]));
        assert_eq!(parse("3, 4,5"), Some(vec![3, 4, 5]));
        assert_eq!(parse(""), None);
        assert_eq!(parse("12,x"), None);
    }
}
