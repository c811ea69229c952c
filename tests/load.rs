//! A small end-to-end load through the real server with the library's load generator: 500
//! listeners, a publisher at 20 lines/s with partials, every line delivered once and in order.
//! Timings are printed, never asserted (CI machines are shared and noisy). Needs about 1,100
//! open files (`ulimit -n`; CI sets 20,000).

mod common;

use std::time::Duration;

use babelcast::load::{self, LoadConfig};
use common::{token, TestServer, EVENT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_listeners_get_every_line_in_order() {
    let server = TestServer::start().await;
    let cfg = LoadConfig {
        url: format!("ws://{}", server.addr),
        event: EVENT.into(),
        channels: vec!["en".into()],
        token: token("en"),
        listeners: 500,
        rate: 20.0,
        partial_rate: 10.0,
        text: "mix".into(),
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
    assert_eq!(report.connected, 500);
    assert!(
        report.acked >= 30,
        "publisher acked {} finals",
        report.acked
    );
    assert!(report.expected_deliveries >= report.acked * 500);
    assert!(!report.lost(), "lost deliveries:\n{}", load::table(&report));
}
