//! Lines in progress of the caption formats (Zoom) and of EBU-TT Live sequences across an
//! event's life: ending an event commits them first (once, into its transcript); deleting an
//! event, a channel or transcripts forgets them, in memory and on disk, so deleted text never
//! comes back in an event or channel created again with the same ids; a line whose commit is
//! refused for good (the event is over) is dropped instead of retried forever.

mod common;

use std::path::Path;

use babelcast::formats::Format;
use babelcast::protocol::ServerMsg;
use common::admin::Admin;
use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `ingest.idle_commit_ms` where a test needs the idle committer running.
const IDLE_MS: u64 = 300;

/// Every file under `dir` (recursively) holding `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// Posts `body` as Zoom caption post `seq` to `event/channel`; asserts 200.
async fn zoom(s: &TestServer, event: &str, channel: &str, token: &str, seq: u64, body: &str) {
    let r = reqwest::Client::new()
        .post(s.http(&format!(
            "/v1/events/{event}/channels/{channel}/captions/zoom?seq={seq}&lang=en-US&token={token}"
        )))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// An EBU-TT Live document of sequence `seq_id` showing `row`.
fn doc(seq_id: &str, number: u64, row: &str) -> String {
    format!(
        r#"<tt:tt xmlns:tt="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" xmlns:ebuttp="urn:ebu:tt:parameters" ttp:timeBase="clock" ttp:clockMode="local" ebuttp:sequenceIdentifier="{seq_id}" ebuttp:sequenceNumber="{number}"><tt:body><tt:div><tt:p xml:id="s1">{row}</tt:p></tt:div></tt:body></tt:tt>"#
    )
}

/// A producer of sequence `seq_id` on `event/channel` that has sent one document showing
/// `row`, once a listener of the channel sees it as the line in progress.
async fn ebutt_line(s: &TestServer, event: &str, channel: &str, token: &str, row: &str) -> Ws {
    let mut l = WsClient::connect(
        &s.ws(&format!("/v1/events/{event}/channels/{channel}/listen")),
        None,
    )
    .await;
    let url = s.ws(&format!(
        "/Respeaker1/publish?event={event}&channel={channel}&token={token}"
    ));
    let mut p = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect")
        .0;
    p.send(Message::Text(doc("Respeaker1", 1, row).into()))
        .await
        .expect("send");
    loop {
        match l.next_msg().await {
            ServerMsg::Partial { text } if text == row => break,
            ServerMsg::Partial { .. } | ServerMsg::Handover { .. } => {}
            other => panic!("expected the partial {row:?}, got {other:?}"),
        }
    }
    p
}

/// A channel's transcript as text.
async fn transcript(s: &TestServer, event: &str, channel: &str) -> String {
    reqwest::get(s.http(&format!(
        "/v1/events/{event}/channels/{channel}/transcript?format=txt"
    )))
    .await
    .unwrap()
    .text()
    .await
    .unwrap()
}

/// A metric's value (0 when absent).
async fn metric(s: &TestServer, series: &str) -> u64 {
    let text = reqwest::get(s.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Asserts that no stream has a line in progress waiting to be committed, anywhere.
#[track_caller]
fn nothing_pending(s: &TestServer) {
    let ingest = s.server().ingest();
    assert_eq!(
        ingest.formats.next_deadline(),
        None,
        "a format line is pending"
    );
    assert_eq!(
        ingest.ebutt.next_deadline(),
        None,
        "an EBU-TT line is pending"
    );
}

/// The reviewer's case: a Zoom line in progress, the event ended, its transcripts and then
/// the event deleted, an event made again with the same ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_text_never_comes_back_in_an_event_made_again() {
    let marker = "Secret-Walrus-4411";
    let mut s = TestServer::start_with(|c| c.ingest.idle_commit_ms = IDLE_MS).await;
    let admin = Admin::new(&s.http(""));
    admin
        .create_event("summit", &[("floor", "auto", None)])
        .await;
    let cred = admin.issue("summit", "floor", "Captioner").await;
    let token = cred["token"].as_str().unwrap();
    zoom(
        &s,
        "summit",
        "floor",
        token,
        1,
        &format!("{marker} said in the old event"),
    )
    .await;
    assert_eq!(
        admin.post("/v1/admin/events/summit/end", json!({})).await.0,
        200
    );
    let (status, v) = admin.delete("/v1/admin/events/summit/transcripts").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["deleted"], 1,
        "the line committed at the end is deleted: {v}"
    );
    assert_eq!(admin.delete("/v1/admin/events/summit").await.0, 204);
    admin
        .create_event("summit", &[("floor", "auto", None)])
        .await;
    nothing_pending(&s);
    assert_eq!(transcript(&s, "summit", "floor").await, "");
    assert_eq!(files_holding(&s.dir, marker), Vec::<String>::new());
    s.restart_with(|c| c.ingest.idle_commit_ms = IDLE_MS).await;
    nothing_pending(&s);
    assert_eq!(transcript(&s, "summit", "floor").await, "");
    assert_eq!(files_holding(&s.dir, marker), Vec::<String>::new());
}

/// A live event deleted with lines in progress (Zoom and EBU-TT Live): they are forgotten,
/// not committed into the event made again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_in_progress_of_a_deleted_event_are_forgotten() {
    let (zoom_marker, ebutt_marker) = ("Hidden-Lynx-2093", "Hidden-Otter-5518");
    let mut s = TestServer::start_with(|c| c.ingest.idle_commit_ms = IDLE_MS).await;
    let admin = Admin::new(&s.http(""));
    admin
        .create_event(
            "summit",
            &[("floor", "auto", None), ("en", "en", Some("floor"))],
        )
        .await;
    let floor = admin.issue("summit", "floor", "Captioner").await;
    let en = admin.issue("summit", "en", "Respeaker").await;
    zoom(
        &s,
        "summit",
        "floor",
        floor["token"].as_str().unwrap(),
        1,
        zoom_marker,
    )
    .await;
    let p = ebutt_line(
        &s,
        "summit",
        "en",
        en["token"].as_str().unwrap(),
        ebutt_marker,
    )
    .await;
    assert_eq!(admin.delete("/v1/admin/events/summit?force=1").await.0, 204);
    drop(p);
    admin
        .create_event(
            "summit",
            &[("floor", "auto", None), ("en", "en", Some("floor"))],
        )
        .await;
    nothing_pending(&s);
    for m in [zoom_marker, ebutt_marker] {
        assert_eq!(files_holding(&s.dir, m), Vec::<String>::new(), "{m}");
    }
    s.restart_with(|c| c.ingest.idle_commit_ms = IDLE_MS).await;
    nothing_pending(&s);
    for ch in ["floor", "en"] {
        assert_eq!(transcript(&s, "summit", ch).await, "", "{ch}");
    }
    for m in [zoom_marker, ebutt_marker] {
        assert_eq!(files_holding(&s.dir, m), Vec::<String>::new(), "{m}");
    }
}

/// The organiser ends the event while the caption software has a line in progress: it is in
/// the transcript once, and nothing is left to retry (not after a restart either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_an_event_commits_a_zoom_line_in_progress_once() {
    let line = "Half a sentence without a newline";
    let mut s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    admin
        .create_event("summit", &[("floor", "auto", None)])
        .await;
    let cred = admin.issue("summit", "floor", "Captioner").await;
    zoom(
        &s,
        "summit",
        "floor",
        cred["token"].as_str().unwrap(),
        1,
        line,
    )
    .await;
    assert_eq!(
        admin.post("/v1/admin/events/summit/end", json!({})).await.0,
        200
    );
    assert_eq!(
        transcript(&s, "summit", "floor")
            .await
            .matches(line)
            .count(),
        1
    );
    let series = r#"babelcast_ingest_auto_commits_total{format="zoom",reason="event_end"}"#;
    assert_eq!(metric(&s, series).await, 1);
    nothing_pending(&s);
    let ch = s.server().hub().channel("summit", "floor").unwrap();
    assert_eq!(s.server().ingest().formats.line(&ch, Format::Zoom), "");
    s.restart().await;
    nothing_pending(&s);
    assert_eq!(
        transcript(&s, "summit", "floor")
            .await
            .matches(line)
            .count(),
        1
    );
}

/// The same for an EBU-TT Live sequence whose producer never cleared its line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_an_event_commits_an_ebutt_line_in_progress_once() {
    let line = "Respoken words still on screen";
    let mut s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    admin.create_event("summit", &[("en", "en", None)]).await;
    let cred = admin.issue("summit", "en", "Respeaker").await;
    let p = ebutt_line(&s, "summit", "en", cred["token"].as_str().unwrap(), line).await;
    assert_eq!(
        admin.post("/v1/admin/events/summit/end", json!({})).await.0,
        200
    );
    assert_eq!(
        transcript(&s, "summit", "en").await.matches(line).count(),
        1
    );
    let series = r#"babelcast_ingest_auto_commits_total{format="ebutt",reason="event_end"}"#;
    assert_eq!(metric(&s, series).await, 1);
    drop(p);
    nothing_pending(&s);
    s.restart().await;
    nothing_pending(&s);
    assert_eq!(
        transcript(&s, "summit", "en").await.matches(line).count(),
        1
    );
}

/// A line the end could not commit (an interpreter was on air) is dropped once the event is
/// over, counted, and not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_refused_for_good_is_dropped_not_retried() {
    let line = "Words from before the interpreter took the air";
    let s = TestServer::start_with(|c| c.ingest.idle_commit_ms = IDLE_MS).await;
    let admin = Admin::new(&s.http(""));
    admin
        .create_event("summit", &[("floor", "auto", None)])
        .await;
    let cap = admin.issue("summit", "floor", "Captioner").await;
    let booth = admin.issue("summit", "floor", "Anna").await;
    zoom(
        &s,
        "summit",
        "floor",
        cap["token"].as_str().unwrap(),
        1,
        line,
    )
    .await;
    let mut p = WsClient::connect(
        &s.ws("/v1/events/summit/channels/floor/publish?name=Anna"),
        booth["token"].as_str(),
    )
    .await;
    p.send_partial("Anna speaking").await;
    let mut l = WsClient::connect(&s.ws("/v1/events/summit/channels/floor/listen"), None).await;
    loop {
        if let ServerMsg::Partial { text } = l.next_msg().await {
            if text == "Anna speaking" {
                break;
            }
        }
    }
    assert_eq!(
        admin.post("/v1/admin/events/summit/end", json!({})).await.0,
        200
    );
    let series = r#"babelcast_ingest_lines_dropped_total{format="zoom"}"#;
    poll_until(series, || async {
        (metric(&s, series).await == 1).then_some(())
    })
    .await;
    nothing_pending(&s);
    assert_eq!(
        transcript(&s, "summit", "floor")
            .await
            .matches(line)
            .count(),
        0
    );
    drop(p);
}

/// A channel deleted with lines in progress, then made again with the same id: nothing of
/// the old one comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_in_progress_of_a_deleted_channel_are_forgotten() {
    let (zoom_marker, ebutt_marker) = ("Gone-Heron-6620", "Gone-Badger-1177");
    let mut s = TestServer::start_with(|c| c.ingest.idle_commit_ms = IDLE_MS).await;
    let admin = Admin::new(&s.http(""));
    admin
        .create_event("summit", &[("floor", "auto", None), ("en", "en", None)])
        .await;
    let en = admin.issue("summit", "en", "Captioner").await;
    let token = en["token"].as_str().unwrap();
    zoom(&s, "summit", "en", token, 1, zoom_marker).await;
    let p = ebutt_line(&s, "summit", "en", token, ebutt_marker).await;
    let (status, v) = admin
        .delete("/v1/admin/events/summit/channels/en?force=1")
        .await;
    assert_eq!(status, 200, "{v}");
    drop(p);
    let (status, v) = admin
        .post(
            "/v1/admin/events/summit/channels",
            json!({"id": "en", "lang": "en"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    nothing_pending(&s);
    assert_eq!(transcript(&s, "summit", "en").await, "");
    for m in [zoom_marker, ebutt_marker] {
        assert_eq!(files_holding(&s.dir, m), Vec::<String>::new(), "{m}");
    }
    s.restart_with(|c| c.ingest.idle_commit_ms = IDLE_MS).await;
    nothing_pending(&s);
    assert_eq!(transcript(&s, "summit", "en").await, "");
}

/// The schedule's end commits a line in progress too, before the event stops taking lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_s_end_commits_a_line_in_progress_once() {
    let line = "Closing words without a newline";
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    // Long enough for the post below to come first, even on a busy machine.
    let soon = babelcast::clock::now_ms() + 3_000;
    let (status, ev) = admin
        .post(
            "/v1/admin/events",
            json!({"id": "summit", "ends_at": soon, "channels": [{"id": "floor", "lang": "auto"}]}),
        )
        .await;
    assert_eq!(status, 201, "{ev}");
    let cred = admin.issue("summit", "floor", "Captioner").await;
    zoom(
        &s,
        "summit",
        "floor",
        cred["token"].as_str().unwrap(),
        1,
        line,
    )
    .await;
    let series = r#"babelcast_ingest_auto_commits_total{format="zoom",reason="event_end"}"#;
    poll_until(series, || async {
        (metric(&s, series).await == 1).then_some(())
    })
    .await;
    assert_eq!(
        transcript(&s, "summit", "floor")
            .await
            .matches(line)
            .count(),
        1
    );
    nothing_pending(&s);
}
