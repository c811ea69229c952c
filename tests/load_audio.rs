//! The load generator as a sound listener, through the real server: 200 listeners of which
//! 100 ask for sound, a feed at 50 packets a second beside the captions; every caption
//! arrives, and the sound listeners get the packets. Timings are printed, never asserted.

mod common;

use std::time::Duration;

use babelcast::load::{self, LoadConfig};
use common::{token, TestServer, EVENT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sound_listeners_get_the_packets_beside_the_captions() {
    let server = TestServer::start().await;
    let cfg = LoadConfig {
        url: format!("ws://{}", server.addr),
        event: EVENT.into(),
        channels: vec!["en".into()],
        token: token("en"),
        listeners: 200,
        audio_listeners: 100,
        rate: 10.0,
        duration_secs: 2.0,
        drain_secs: 30,
        settle_secs: 0.2,
        ..LoadConfig::default()
    };
    let report = tokio::time::timeout(Duration::from_secs(120), load::run(cfg))
        .await
        .expect("load run finished")
        .expect("load run started");
    println!("{}", load::table(&report));
    assert!(!report.lost(), "lost captions:\n{}", load::table(&report));
    let a = report.audio.expect("a sound report");
    assert!(a.sent >= 50, "the feed sent {} packets", a.sent);
    // Every sound listener got the packets (a few may be skipped on a busy machine).
    assert!(
        a.received + a.skipped >= a.sent * 100 * 9 / 10,
        "{} received, {} skipped of {} x 100",
        a.received,
        a.skipped,
        a.sent
    );
    assert!(a.received > 0 && a.latency.count == a.received);
}
