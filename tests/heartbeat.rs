//! A quiet channel beats: with nothing to send, listeners get the status frame again every few
//! seconds, so a page can tell a quiet channel from a dead connection. On the runtime's paused
//! clock, so the ticks pass at once (the test stores nothing: no thread outside the runtime).
mod common;
use babelcast::channel::QUIET_TICKS;
use babelcast::hub::STATUS_INTERVAL;
use babelcast::protocol::ServerMsg;
use common::*;

#[tokio::test(start_paused = true)]
async fn a_quiet_channel_sends_its_status_again_every_few_ticks() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    // The tick after the join sends the new listener count; then the channel is quiet.
    let ServerMsg::Status(status) = l.recv_msg().await else {
        panic!("a quiet listener gets only status frames");
    };
    assert_eq!(status.listeners, 1);
    let mut last = tokio::time::Instant::now();
    for beat in 1..=3 {
        let ServerMsg::Status(again) = l.recv_msg().await else {
            panic!("a quiet listener gets only status frames");
        };
        assert_eq!(again, status, "a heartbeat repeats the status");
        let gap = last.elapsed();
        last = tokio::time::Instant::now();
        let every = STATUS_INTERVAL * QUIET_TICKS;
        assert!(
            gap >= every && gap <= every + STATUS_INTERVAL,
            "beat {beat} came {gap:?} after the last frame (every {every:?})"
        );
    }
}
