//! Egress forwarders against local HTTP receivers that record the exact requests: Zoom seq and
//! language, YouTube timestamped bodies, retries with the same seq on 503, lines dropped on
//! 400, an outage that never blocks the channel, catch-up in order, resume after a restart;
//! and over HTTPS: a receiver whose certificate a test CA signed (`server.forward_ca_file`),
//! and one whose certificate nobody trusts.
mod common;
use common::*;
#[path = "forwarders/receiver.rs"]
mod receiver;
use receiver::{query_value, Receiver, Seen};

use std::sync::atomic::Ordering;
use std::time::Duration;

use babelcast::config::{ForwardConfig, ForwardKind};
use babelcast::protocol::ServerMsg;

fn forward(c: &mut babelcast::Config, channel: &str, kind: ForwardKind, url: String) {
    let ch = c.events[0]
        .channels
        .iter_mut()
        .find(|ch| ch.id.get_ref() == channel)
        .unwrap();
    ch.forward.push(ForwardConfig {
        kind,
        url,
        lang: None,
    });
}

async fn metrics(s: &TestServer) -> String {
    reqwest::get(s.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until /metrics has a line starting with `series` and ending with ` value`.
async fn metric(s: &TestServer, series: &str, value: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = metrics(s).await;
        if m.lines()
            .any(|l| l.starts_with(series) && l.ends_with(&format!(" {value}")))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {series} {value} in:\n{}",
            m.lines()
                .filter(|l| l.starts_with("babelcast_forward"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn publish_lines(s: &TestServer, channel: &str, lines: &[&str]) {
    let mut p = s.publish(channel).await;
    for text in lines {
        let ack = p.publish_final(text, None).await;
        assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_forwarder_continues_the_remote_seq_with_zooms_language_code() {
    let (rx, base) = Receiver::start().await;
    rx.seq.store(41, Ordering::SeqCst);
    let url = format!("{base}/closedcaption?id=200610693&ns=GZHkEA==&expire=86400");
    let s = TestServer::start_with(|c| forward(c, "zh", ForwardKind::Zoom, url.clone())).await;
    // The forwarder first asks Zoom for its last seq.
    let first = rx.requests(1).await;
    assert_eq!(first[0].method, "GET");
    assert_eq!(
        first[0].target,
        "/closedcaption/seq?id=200610693&ns=GZHkEA==&expire=86400"
    );
    let lines = [
        "大家好，欢迎参加今天的会议。",
        "我们先讨论贸易问题。",
        "谢谢大家。",
    ];
    publish_lines(&s, "zh", &lines).await;
    let seen = rx.accepted(3).await;
    let posts: Vec<_> = seen.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 3, "{seen:#?}");
    for (i, (post, text)) in posts.iter().zip(lines).enumerate() {
        assert_eq!(
            post.target,
            format!(
                "/closedcaption?id=200610693&ns=GZHkEA==&expire=86400&seq={}&lang=zh-CN",
                42 + i
            )
        );
        assert_eq!(post.content_type, "text/plain; charset=utf-8");
        assert_eq!(post.body, format!("{text}\n"));
    }
    let labels = r#"{event="conf",channel="zh",kind="zoom",index="0""#;
    metric(&s, &format!("babelcast_forward_posts_total{labels}}}"), "3").await;
    metric(&s, &format!("babelcast_forward_remote_seq{labels}}}"), "44").await;
    metric(
        &s,
        &format!("babelcast_forward_state{labels},state=\"up_to_date\"}}"),
        "1",
    )
    .await;
    metric(&s, &format!("babelcast_forward_behind{labels}}}"), "0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn youtube_forwarder_retries_503_with_the_same_seq_and_never_reorders() {
    let (rx, base) = Receiver::start().await;
    rx.fail_first.store(3, Ordering::SeqCst);
    let url = format!("{base}/closedcaption?cid=stream-key");
    let s = TestServer::start_with(|c| forward(c, "en", ForwardKind::Youtube, url.clone())).await;
    publish_lines(
        &s,
        "en",
        &[
            "Good morning.",
            "Two\nrows.",
            "This one REFUSE please.",
            "Last one.",
        ],
    )
    .await;
    let seen = rx.accepted(3).await;
    let posts: Vec<_> = seen.iter().filter(|r| r.method == "POST").collect();
    let summary: Vec<(u16, &str)> = posts
        .iter()
        .map(|p| (p.status, query_value(&p.target, "seq").unwrap()))
        .collect();
    // Three 503s, then the same seq succeeds; a 400 drops that line and its seq is reused.
    assert_eq!(
        summary,
        [
            (503, "1"),
            (503, "1"),
            (503, "1"),
            (200, "1"),
            (200, "2"),
            (400, "3"),
            (200, "3")
        ],
        "{posts:#?}"
    );
    let texts: Vec<String> = posts
        .iter()
        .filter(|p| p.status == 200)
        .map(|p| {
            let (ts, rest) = p.body.split_once('\n').unwrap();
            assert!(
                babelcast::formats::timestamp::parse(ts).is_some(),
                "{:?}",
                p.body
            );
            assert_eq!(
                p.target,
                format!(
                    "/closedcaption?cid=stream-key&seq={}",
                    query_value(&p.target, "seq").unwrap()
                )
            );
            assert_eq!(p.content_type, "text/plain; charset=utf-8");
            rest.to_string()
        })
        .collect();
    assert_eq!(texts, ["Good morning.\n", "Two<br>rows.\n", "Last one.\n"]);
    let labels = r#"{event="conf",channel="en",kind="youtube",index="0"}"#;
    metric(&s, &format!("babelcast_forward_retries_total{labels}"), "3").await;
    metric(&s, &format!("babelcast_forward_dropped_total{labels}"), "1").await;
    metric(&s, &format!("babelcast_forward_posts_total{labels}"), "3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_never_blocks_the_channel_and_the_forwarder_catches_up_in_order() {
    let (rx, base) = Receiver::start().await;
    rx.down.store(true, Ordering::SeqCst);
    let url = format!("{base}/cc?cid=k");
    // A tiny broadcast ring: the forwarder laps it while the remote is down.
    let s = TestServer::start_with(|c| {
        c.limits.listener_queue = 4;
        forward(c, "en", ForwardKind::Youtube, url.clone());
    })
    .await;
    let mut l = s.listen("en", None).await;
    let lines: Vec<String> = (1..=30)
        .map(|i| format!("Line number {i} of the speech."))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    // Every line is stored, acked and delivered to listeners while the remote is down.
    publish_lines(&s, "en", &refs).await;
    for i in 1..=30 {
        assert_eq!(l.next_line().await.0, i);
    }
    let labels = r#"{event="conf",channel="en",kind="youtube",index="0""#;
    metric(
        &s,
        &format!("babelcast_forward_state{labels},state=\"retrying\"}}"),
        "1",
    )
    .await;
    metric(&s, &format!("babelcast_forward_behind{labels}}}"), "30").await;
    assert!(rx.seen().iter().all(|r| r.status == 503));

    rx.down.store(false, Ordering::SeqCst);
    let seen = rx.accepted(30).await;
    let accepted: Vec<&Seen> = seen.iter().filter(|r| r.status == 200).collect();
    for (i, post) in accepted.iter().enumerate() {
        assert_eq!(
            query_value(&post.target, "seq"),
            Some((i + 1).to_string().as_str())
        );
        assert!(
            post.body.ends_with(&format!("\n{}\n", lines[i])),
            "{post:?}"
        );
    }
    metric(&s, &format!("babelcast_forward_behind{labels}}}"), "0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_where_the_forwarder_stopped() {
    let (rx, base) = Receiver::start().await;
    rx.down.store(true, Ordering::SeqCst);
    let url = format!("{base}/cc?cid=k");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = |c: &mut babelcast::Config| forward(c, "en", ForwardKind::Youtube, url.clone());
    let mut s = TestServer::start_in(tmp.path(), cfg).await;
    publish_lines(&s, "en", &["Said before the restart.", "Also before."]).await;
    rx.requests(1).await;
    s.stop().await;

    rx.down.store(false, Ordering::SeqCst);
    let s = TestServer::start_in(tmp.path(), cfg).await;
    let seen = rx.accepted(2).await;
    let accepted: Vec<&Seen> = seen.iter().filter(|r| r.status == 200).collect();
    assert!(accepted[0].body.ends_with("\nSaid before the restart.\n"));
    assert!(accepted[1].body.ends_with("\nAlso before.\n"));
    assert_eq!(query_value(&accepted[1].target, "seq"), Some("2"));
    // And it goes on from there.
    publish_lines(&s, "en", &["After the restart."]).await;
    let seen = rx.accepted(3).await;
    let last = seen.iter().rfind(|r| r.status == 200).unwrap();
    assert!(last.body.ends_with("\nAfter the restart.\n"));
    assert_eq!(query_value(&last.target, "seq"), Some("3"));
}

/// The value of the /metrics line starting with `series`, if any.
async fn metric_value(s: &TestServer, series: &str) -> Option<f64> {
    metrics(s)
        .await
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_forwarder_posts_over_https_to_a_server_signed_by_the_extra_ca() {
    let (rx, base, ca_pem) = Receiver::start_https().await;
    rx.seq.store(41, Ordering::SeqCst);
    let certs = tempfile::tempdir().unwrap();
    let ca_file = certs.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    // The file the config names passes the load-time check.
    babelcast::config::load_ca_file(&ca_file).expect("the test CA is a usable root");
    let url = format!("{base}/closedcaption?id=200610693&ns=GZHkEA==&expire=86400");
    let s = TestServer::start_with(|c| {
        c.server.forward_ca_file = Some(toml::Spanned::new(0..0, ca_file.clone()));
        forward(c, "zh", ForwardKind::Zoom, url.clone());
    })
    .await;
    let first = rx.requests(1).await;
    assert_eq!(first[0].method, "GET");
    assert_eq!(
        first[0].target,
        "/closedcaption/seq?id=200610693&ns=GZHkEA==&expire=86400"
    );
    let lines = ["大家好。", "第二句话。", "谢谢。"];
    publish_lines(&s, "zh", &lines).await;
    let seen = rx.accepted(3).await;
    let posts: Vec<_> = seen.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 3, "{seen:#?}");
    for (i, (post, text)) in posts.iter().zip(lines).enumerate() {
        assert_eq!(post.status, 200);
        assert_eq!(
            post.target,
            format!(
                "/closedcaption?id=200610693&ns=GZHkEA==&expire=86400&seq={}&lang=zh-CN",
                42 + i
            )
        );
        assert_eq!(post.content_type, "text/plain; charset=utf-8");
        assert_eq!(post.body, format!("{text}\n"));
    }
    assert_eq!(rx.handshake_failures.load(Ordering::SeqCst), 0);
    let labels = r#"{event="conf",channel="zh",kind="zoom",index="0""#;
    metric(&s, &format!("babelcast_forward_posts_total{labels}}}"), "3").await;
    metric(&s, &format!("babelcast_forward_remote_seq{labels}}}"), "44").await;
    metric(
        &s,
        &format!("babelcast_forward_retries_total{labels}}}"),
        "0",
    )
    .await;
    metric(
        &s,
        &format!("babelcast_forward_state{labels},state=\"up_to_date\"}}"),
        "1",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_https_certificate_never_delivers_and_never_blocks_the_channel() {
    // The receiver's CA is not given to the server: only the Mozilla roots are trusted.
    let (rx, base, _ca_pem) = Receiver::start_https().await;
    let url = format!("{base}/closedcaption?cid=stream-key");
    let s = TestServer::start_with(|c| forward(c, "en", ForwardKind::Youtube, url.clone())).await;
    let mut l = s.listen("en", None).await;
    let mut p = s.publish("en").await;
    let lines = ["First line.", "Second line.", "Third line."];
    for text in lines {
        let ack = p.publish_final(text, None).await;
        assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    }
    for (i, text) in lines.iter().enumerate() {
        assert_eq!(l.next_line().await, (i as u64 + 1, text.to_string()));
    }
    let labels = r#"{event="conf",channel="en",kind="youtube",index="0""#;
    metric(
        &s,
        &format!("babelcast_forward_state{labels},state=\"retrying\"}}"),
        "1",
    )
    .await;
    // Failed attempts are counted, and the forwarder kept knocking: each was a refused
    // handshake, none reached the receiver's HTTP side.
    let retries = poll_until("two counted retries", || async {
        metric_value(&s, &format!("babelcast_forward_retries_total{labels}}}"))
            .await
            .filter(|&n| n >= 2.0)
    })
    .await;
    assert!(retries >= 2.0);
    // The receiver counts a refused handshake when its side of it ends, which may be after the
    // forwarder has counted its retry.
    poll_until("two refused handshakes at the receiver", || async {
        (rx.handshake_failures.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    assert!(rx.seen().is_empty(), "{:#?}", rx.seen());
    metric(&s, &format!("babelcast_forward_posts_total{labels}}}"), "0").await;
    metric(&s, &format!("babelcast_forward_behind{labels}}}"), "3").await;
    // The channel goes on while the forwarder retries.
    let ack = p.publish_final("Fourth line.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    assert_eq!(l.next_line().await.1, "Fourth line.");
}
