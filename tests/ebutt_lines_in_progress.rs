//! EBU-TT Live producers that never send a clearing document, and WebSocket publishers that
//! leave mid-line: the line in progress is committed (EBU-TT) or cleared (WebSocket partials)
//! and no stale partial stays on listeners' screens.
mod common;
use babelcast::protocol::ServerMsg;
use common::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A document of sequence `seq_id` showing `rows` (one `tt:p` each), timed by `body_timing`
/// (attributes of `tt:body`).
fn doc(seq_id: &str, number: u64, rows: &[&str], body_timing: &str) -> String {
    let ps: String = rows
        .iter()
        .map(|r| format!("<tt:p xml:id=\"sub1\">{r}</tt:p>"))
        .collect();
    format!(
        r#"<tt:tt xmlns:tt="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" xmlns:ebuttp="urn:ebu:tt:parameters" ttp:timeBase="clock" ttp:clockMode="local" ebuttp:sequenceIdentifier="{seq_id}" ebuttp:sequenceNumber="{number}"><tt:body {body_timing}><tt:div>{ps}</tt:div></tt:body></tt:tt>"#
    )
}

/// A producer on the toolkit-shaped URL (nothing comes back there).
async fn producer(s: &TestServer, seq_id: &str) -> Ws {
    let url = s.ws(&format!(
        "/{seq_id}/publish?event={EVENT}&channel=en&token={}",
        token("en")
    ));
    tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect")
        .0
}

async fn send(ws: &mut Ws, text: String) {
    ws.send(Message::Text(text.into())).await.expect("send");
}

/// Reads a listener until it has seen exactly `want` as lines, in order, and its partial is
/// empty; fails on any other line.
async fn lines_then_no_partial(l: &mut WsClient, want: &[&str]) {
    let (mut got, mut partial) = (Vec::new(), String::new());
    while got.len() < want.len() || !partial.is_empty() {
        match l.next_msg().await {
            ServerMsg::Line { text, .. } => {
                got.push(text.into_owned());
                assert_eq!(got[..], want[..got.len()], "lines so far");
            }
            ServerMsg::Partial { text } => partial = text.into_owned(),
            ServerMsg::Handover { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Waits for a partial with exactly `text`.
async fn partial(l: &mut WsClient, text: &str) {
    loop {
        match l.next_msg().await {
            ServerMsg::Partial { text: t } if t == text => return,
            ServerMsg::Partial { .. } | ServerMsg::Handover { .. } => {}
            other => panic!("expected partial {text:?}, got {other:?}"),
        }
    }
}

/// Waits until babelcast has counted `n` commits of its own for `reason` (counted once the
/// line and the sequence's state are stored, just after listeners see the line).
async fn commits(s: &TestServer, reason: &str, n: u64) {
    let series =
        format!("babelcast_ingest_auto_commits_total{{format=\"ebutt\",reason=\"{reason}\"}}");
    poll_until(&series, || async {
        let text = reqwest::get(s.http("/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let got: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())?;
        assert!(got <= n, "{series} = {got}");
        (got == n).then_some(())
    })
    .await;
}

/// The widely used producer pattern: a growing line, then the producer goes away without a
/// clearing document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_disconnects_mid_line_loses_nothing() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let mut p = producer(&s, "Respeaker1").await;
    send(&mut p, doc("Respeaker1", 1, &["Good"], "")).await;
    send(&mut p, doc("Respeaker1", 2, &["Good evening"], "")).await;
    partial(&mut l, "Good evening").await;
    drop(p);
    lines_then_no_partial(&mut l, &["Good evening"]).await;
    commits(&s, "disconnect", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_producer_s_line_is_committed_and_its_refresh_or_continuation_is_not_doubled() {
    let s = TestServer::start_with(|c| c.ingest.idle_commit_ms = 200).await;
    let mut l = s.listen("en", None).await;
    let mut p = producer(&s, "S").await;
    send(&mut p, doc("S", 1, &["Good evening"], "")).await;
    lines_then_no_partial(&mut l, &["Good evening"]).await;
    // The same screen again, then the line grows: only the new words are a line.
    send(&mut p, doc("S", 2, &["Good evening"], "")).await;
    send(&mut p, doc("S", 3, &["Good evening and welcome."], "")).await;
    partial(&mut l, "and welcome.").await;
    lines_then_no_partial(&mut l, &["and welcome."]).await;
    commits(&s, "idle", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_whose_duration_passed_has_its_line_committed() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let mut p = producer(&s, "Timed").await;
    send(
        &mut p,
        doc(
            "Timed",
            1,
            &["Shown for a moment."],
            r#"begin="10s" dur="0.2s""#,
        ),
    )
    .await;
    lines_then_no_partial(&mut l, &["Shown for a moment."]).await;
    send(
        &mut p,
        doc("Timed", 2, &["Then this."], r#"begin="12s" end="12.2s""#),
    )
    .await;
    lines_then_no_partial(&mut l, &["Then this."]).await;
    commits(&s, "timing", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_replaced_by_another_has_its_line_committed_first() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let mut a = producer(&s, "A").await;
    send(&mut a, doc("A", 1, &["First respeaker's last words"], "")).await;
    partial(&mut l, "First respeaker's last words").await;
    // The partner's producer takes over with its own sequence (A stays connected, silent).
    let mut b = producer(&s, "B").await;
    send(&mut b, doc("B", 1, &["Second respeaker"], "")).await;
    lines_then_no_partial_after(&mut l, "First respeaker's last words", "Second respeaker").await;
    send(&mut b, doc("B", 2, &[], "")).await;
    lines_then_no_partial(&mut l, &["Second respeaker"]).await;
    commits(&s, "replaced", 1).await;
    drop(a);
}

/// The line `first`, then the partial `next`.
async fn lines_then_no_partial_after(l: &mut WsClient, first: &str, next: &str) {
    loop {
        if let ServerMsg::Line { text, .. } = l.next_msg().await {
            assert_eq!(text, first);
            break;
        }
    }
    partial(l, next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_publisher_s_partial_is_cleared_when_it_leaves() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let mut p = s.publish_as("en", "Anna").await;
    p.send_partial("I was about to say").await;
    partial(&mut l, "I was about to say").await;
    p.ws.close(None).await.unwrap();
    drop(p);
    partial(&mut l, "").await;
    let lines: i64 = s
        .db()
        .query_row("SELECT COUNT(*) FROM events WHERE kind = 'line'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        lines, 0,
        "a partial is not a line: the publisher never committed it"
    );
}
