//! Observability: `/metrics` has every series the operator's dashboard reads
//! (docs/grafana-dashboard.json), the latency histograms fill, coalesced partials are counted,
//! and `serve --log-json` logs JSON lines.
mod common;
use std::collections::BTreeSet;

use babelcast::protocol::ServerMsg;
use common::raw;
use common::*;

/// Metric names (histograms without their `_bucket`/`_sum`/`_count` suffix) in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("babelcast_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(base.to_string());
        rest = &tail[end..];
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_the_dashboard_and_the_issue() {
    // With a forwarder, so its series are there too (it posts to a closed loopback port).
    let s = TestServer::start_with(|c| {
        c.events[0].channels[1]
            .forward
            .push(babelcast::config::ForwardConfig {
                kind: babelcast::config::ForwardKind::Zoom,
                url: "http://127.0.0.1:9/closedcaption?id=1".into(),
                lang: None,
            })
    })
    .await;
    let mut l = s.listen("en", None).await;
    let mut p = s.publish("en").await;
    p.send_partial("Good").await;
    assert_eq!(p.publish_final("Good morning.", None).await, acked(1));
    loop {
        if let ServerMsg::Line { seq, .. } = l.next_msg().await {
            assert_eq!(seq, 1);
            break;
        }
    }
    let body = raw::get(s.addr, "/metrics").await.body;
    let have = metric_names(&body);
    for want in [
        "babelcast_listeners",
        "babelcast_publishers",
        "babelcast_lines_total",
        "babelcast_frames_out_total",
        "babelcast_partials_total",
        "babelcast_partials_coalesced_total",
        "babelcast_slow_listener_closes_total",
        "babelcast_listener_catch_ups_total",
        "babelcast_publish_to_send_seconds",
        "babelcast_store_commit_seconds",
        "babelcast_store_failures_total",
        "babelcast_refusals_total",
        "babelcast_http_connections",
        "babelcast_max_connections",
        "babelcast_idle_closes_total",
        "babelcast_forward_state",
    ] {
        assert!(have.contains(want), "{want} missing from /metrics");
    }
    for reason in [
        "not_found",
        "unauthorized",
        "bad_message",
        "too_big",
        "storage",
        "node_full",
        "ip_connections",
        "ip_rate",
        "rate_limited",
        "timeout",
        "origin",
        "access_code",
    ] {
        assert!(
            body.contains(&format!("babelcast_refusals_total{{reason=\"{reason}\"}}")),
            "reason {reason}"
        );
    }
    assert!(body.contains("babelcast_listeners{event=\"conf\",channel=\"en\"} 1"));
    // The line sent to the listener was timed (once the fan-out pass that wrote it ended,
    // which may be just after the listener read it).
    let addr = s.addr;
    poll_until("publish-to-send to be timed", || async move {
        (raw::metric(addr, "babelcast_publish_to_send_seconds_count").await >= 1.0).then_some(())
    })
    .await;
    assert!(raw::metric(s.addr, "babelcast_store_commit_seconds_count").await >= 1.0);

    // Every series the dashboard graphs exists (cluster series only on cluster nodes).
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/grafana-dashboard.json"),
    )
    .unwrap();
    let _: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    for name in metric_names(&dashboard) {
        if !name.starts_with("babelcast_cluster_") {
            assert!(
                have.contains(&name),
                "the dashboard graphs {name}, which /metrics lacks"
            );
        }
    }
}

/// Returns once the server's session has read everything `c` sent so far: a session reads its
/// socket in order, so its pong to a ping sent now comes after it took every earlier message.
async fn read_in_order(c: &mut WsClient) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    const MARK: &[u8] = b"read in order";
    c.ws.send(Message::Ping(MARK.to_vec().into()))
        .await
        .expect("send a ping");
    tokio::time::timeout(RECV_TIMEOUT, async {
        loop {
            match c.ws.next().await {
                Some(Ok(Message::Pong(d))) if d[..] == *MARK => return,
                Some(Ok(_)) => {}
                other => panic!("no pong: {other:?}"),
            }
        }
    })
    .await
    .expect("the session answers the ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_falls_behind_gets_only_the_newest_partial() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let mut p = s.publish("en").await;
    // Fill the listener's socket (it reads nothing), then send partials while its session
    // is blocked writing: it must skip to the newest.
    for i in 1..=60 {
        p.send_final(&format!("{i} {}", "filler text ".repeat(300)))
            .await;
    }
    for _ in 1..=60 {
        let ack = p.next_msg().await;
        assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    }
    for i in 1..=30 {
        p.send_partial(&format!("partial {i}")).await;
    }
    read_in_order(&mut p).await;
    // Now read everything: all 60 lines, and partials ending with the newest.
    let mut lines = 0;
    let mut partials = Vec::new();
    while lines < 60 || partials.last().map(String::as_str) != Some("partial 30") {
        match l.next_msg().await {
            ServerMsg::Line { .. } => lines += 1,
            ServerMsg::Partial { text } => partials.push(text.into_owned()),
            _ => {}
        }
    }
    assert!(
        partials.len() < 30,
        "partials were not coalesced: {partials:?}"
    );
    let coalesced = raw::metric(
        s.addr,
        "babelcast_partials_coalesced_total{event=\"conf\",channel=\"en\"}",
    )
    .await;
    // Every partial the listener was not sent is counted (give or take the one racing the
    // count's read).
    let skipped = (30 - partials.len()) as f64;
    assert!(
        (coalesced - skipped).abs() <= 1.0,
        "{coalesced} vs {skipped}: {partials:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_json_writes_one_json_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = BinServer::spawn(BinOptions::new(tmp.path()).arg("--log-json")).await;
    let mut p = bin.publish_as("en", "Ana").await;
    let line = poll_until("the publisher's log line", || async {
        bin.log()
            .lines()
            .find(|l| l.contains("publisher connected"))
            .map(str::to_string)
    })
    .await;
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["message"], "publisher connected");
    assert!(!line.contains(&token("en")));
    p.ws.close(None).await.ok();
}
