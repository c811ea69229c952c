//! The request streams of real caption senders, replayed exactly over HTTP: every caption in
//! the transcript exactly once, in order, and no stale partial left for listeners once the
//! commit window (`ingest.idle_commit_ms`, short here) has passed.
//!
//! The senders (their code read, each stream below as it sends it):
//! - `zoom-narrator` 1.0.1 (PyPI): Zoom, `seq` from 0 counted up after every post whatever the
//!   answer, `lang=en-US`, one subtitle per post as pysubs2's `plaintext` (rows joined by
//!   `\n`, no final line break).
//! - GotIt (`postToZoom.py`): Zoom, **always `seq=1`**, a transcript chunk per post, no line
//!   break; its `ZoomClass` counts from 0 and increments after every post, failed or not.
//! - Shabad OS desktop (`zoom` controller): reads `…/closedcaption/seq` first, posts
//!   `seq=last+1` **without `lang`**, Gurmukhi, translation and transliteration joined by `\n`
//!   with no final one, and an empty body when the line is cleared.
//! - `lcyt` 2.5.0 (npm): YouTube, `seq` from 0 counted up on 2xx only, heartbeats as empty
//!   posts under the current seq, batches of `TIMESTAMP\ntext` joined by `\n`.
mod common;
use common::*;

/// The commit window of these tests.
const IDLE_MS: u64 = 200;
/// The commit window of tests whose posts, sent back to back, must land in one window (one
/// breath of the sender): far longer than a loaded machine takes between two requests.
const BREATH_MS: u64 = 1_500;

async fn server() -> TestServer {
    server_with(IDLE_MS).await
}

async fn server_with(idle_commit_ms: u64) -> TestServer {
    TestServer::start_with(|c| c.ingest.idle_commit_ms = idle_commit_ms).await
}

fn url(s: &TestServer, what: &str, query: &str) -> String {
    let path = TestServer::channel_path("en", &format!("captions/{what}"));
    s.http(&format!("{path}?token={}&{query}", token("en")))
}

async fn post(url: &str, content_type: &str, body: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

async fn zoom(s: &TestServer, query: &str, body: &str) -> (u16, String) {
    post(&url(s, "zoom", query), "text/plain; charset=utf-8", body).await
}

/// Reads a listener until it has seen exactly `want` as lines, in order, and the partial
/// it shows is empty (no stale line in progress); fails on any other line.
async fn lines_then_no_partial(l: &mut WsClient, want: &[&str]) {
    let (mut got, mut partial) = (Vec::new(), String::new());
    while got.len() < want.len() || !partial.is_empty() {
        let v = l.recv_event().await;
        match v["type"].as_str() {
            Some("line") => {
                got.push(v["text"].as_str().unwrap().to_string());
                assert_eq!(got[..], want[..got.len()], "lines so far");
            }
            Some("partial") => partial = v["text"].as_str().unwrap().to_string(),
            _ => panic!("unexpected {v}"),
        }
    }
}

/// The transcript's lines (TXT export).
async fn transcript(s: &TestServer) -> Vec<String> {
    let url = s.http(&format!(
        "{}?format=txt",
        TestServer::channel_path("en", "transcript")
    ));
    let txt = reqwest::get(url).await.unwrap().text().await.unwrap();
    txt.lines().map(str::to_string).collect()
}

async fn metric(s: &TestServer, series: &str) -> u64 {
    let text = reqwest::get(s.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_narrator_posts_subtitles_without_line_breaks_from_seq_0() {
    let s = server_with(BREATH_MS).await;
    let mut l = s.listen("en", None).await;
    let subtitles = [
        "Good morning, everyone.",
        "Welcome to the\nannual meeting.",
        "Please take your seats.",
    ];
    for (seq, text) in subtitles.iter().enumerate() {
        let (st, body) = zoom(&s, &format!("seq={seq}&lang=en-US"), text).await;
        assert_eq!(st, 200, "{body}");
    }
    // Posts continue the line with a space; a row break inside a subtitle ends a line; the
    // silence after the last commits the rest.
    let want = [
        "Good morning, everyone. Welcome to the",
        "annual meeting. Please take your seats.",
    ];
    lines_then_no_partial(&mut l, &want).await;
    assert_eq!(transcript(&s).await, want);
    let series = "babelcast_ingest_auto_commits_total{format=\"zoom\",reason=\"idle\"}";
    poll_until(series, || async {
        (metric(&s, series).await == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_always_posts_seq_1_loses_nothing() {
    let s = server_with(BREATH_MS).await;
    let mut l = s.listen("en", None).await;
    let ct = "text/plain; charset=utf-8";
    // Captions spoken apart: each is committed by the silence after it.
    for text in ["Hello.", "How are you?", "Hello."] {
        let (st, body) = post(&url(&s, "zoom", "seq=1&lang=en-US"), ct, text).await;
        assert_eq!(st, 200, "{body}");
        lines_then_no_partial(&mut l, &[text]).await;
    }
    // Two captions in one breath share a line.
    for text in ["Fine,", "thanks."] {
        assert_eq!(
            post(&url(&s, "zoom", "seq=1&lang=en-US"), ct, text).await.0,
            200
        );
    }
    lines_then_no_partial(&mut l, &["Fine, thanks."]).await;
    assert_eq!(
        transcript(&s).await,
        ["Hello.", "How are you?", "Hello.", "Fine, thanks."]
    );
    assert_eq!(
        metric(
            &s,
            "babelcast_ingest_same_seq_new_text_total{format=\"zoom\"}"
        )
        .await,
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_counting_up_past_a_lost_post_is_not_stuck() {
    let s = server().await;
    let mut l = s.listen("en", None).await;
    // seq 0 arrives; seq 1 is lost on the way (the sender counts it anyway); seq 2 and on.
    assert_eq!(zoom(&s, "seq=0&lang=en-US", "First.\n").await.0, 200);
    for (seq, text) in [(2, "Third.\n"), (3, "Fourth.\n")] {
        let (st, body) = zoom(&s, &format!("seq={seq}&lang=en-US"), text).await;
        assert_eq!(st, 200, "a gap is accepted: {body}");
    }
    lines_then_no_partial(&mut l, &["First.", "Third.", "Fourth."]).await;
    assert_eq!(
        metric(&s, "babelcast_ingest_seq_gaps_total{format=\"zoom\"}").await,
        1
    );
    assert_eq!(
        metric(&s, "babelcast_ingest_seqs_skipped_total{format=\"zoom\"}").await,
        1
    );
    let seq_url = url(&s, "zoom/seq", "");
    assert_eq!(
        reqwest::get(seq_url).await.unwrap().text().await.unwrap(),
        "3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shabad_os_reads_the_seq_omits_lang_and_sends_rows_and_clears() {
    let s = server().await;
    let mut l = s.listen("en", None).await;
    let mut prev: u64 = reqwest::get(url(&s, "zoom/seq", ""))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut send = |body: &'static str| {
        prev += 1;
        let u = url(&s, "zoom", &format!("seq={prev}"));
        async move { post(&u, "text/plain", body).await }
    };
    let rows = [
        "ਸਤਿ ਨਾਮੁ\nTruth is the name\nsat naam",
        "ਕਰਤਾ ਪੁਰਖੁ\nThe creator\nkartaa purakh",
    ];
    let (st, body) = send(rows[0]).await;
    assert_eq!(st, 200, "{body}");
    lines_then_no_partial(&mut l, &["ਸਤਿ ਨਾਮੁ", "Truth is the name", "sat naam"]).await;
    // The operator clears the line: an empty post.
    assert_eq!(send("").await.0, 200);
    assert_eq!(send(rows[1]).await.0, 200);
    lines_then_no_partial(&mut l, &["ਕਰਤਾ ਪੁਰਖੁ", "The creator", "kartaa purakh"]).await;
    assert_eq!(transcript(&s).await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lcyt_sends_heartbeats_and_batches_to_youtube_from_seq_0() {
    let s = server().await;
    let mut l = s.listen("en", None).await;
    let yt = |seq: u64| url(&s, "youtube", &format!("seq={seq}"));
    let now = babelcast::formats::timestamp::format(babelcast::clock::now_ms());
    // A heartbeat under the current seq, then one caption, then a batch of two.
    let (st, hb) = post(&yt(0), "text/plain", "").await;
    assert_eq!(st, 200);
    assert!(babelcast::formats::timestamp::parse(&hb).is_some(), "{hb}");
    assert_eq!(
        post(&yt(0), "text/plain", &format!("{now}\nHello\n"))
            .await
            .0,
        200
    );
    let batch = format!("{now}\nOne\n{now}\nTwo\n");
    let first = post(&yt(1), "text/plain", &batch).await;
    assert_eq!(first.0, 200);
    // The app resends a batch whose answer it did not get: the same answer, nothing stored.
    assert_eq!(post(&yt(1), "text/plain", &batch).await, first);
    lines_then_no_partial(&mut l, &["Hello", "One", "Two"]).await;
    assert_eq!(transcript(&s).await, ["Hello", "One", "Two"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamtext_text_without_a_line_break_is_committed_by_silence_unspaced() {
    let s = server_with(BREATH_MS).await;
    let mut l = s.listen("en", None).await;
    let st = |seq: u64| url(&s, "streamtext", &format!("seq={seq}&lang=en"));
    // StreamText posts what was typed since its last post, split anywhere.
    for (seq, typed) in [(1, "Good mor"), (2, "ning, every"), (3, "one")] {
        assert_eq!(post(&st(seq), "text/plain", typed).await.0, 200);
    }
    lines_then_no_partial(&mut l, &["Good morning, everyone"]).await;
}

/// Every seq rule of docs/integrations.md, one after the other on one stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_rules_retry_changed_body_gap_and_new_runs() {
    let mut s = TestServer::start().await;
    let q = |seq: u64| format!("seq={seq}&lang=en-US");
    let first = zoom(&s, &q(5), "Apples.\n").await;
    assert_eq!(first.0, 200);
    // A retry: same seq, same body: the first answer, nothing stored.
    assert_eq!(zoom(&s, &q(5), "Apples.\n").await, first);
    // Same seq, another body: new text.
    assert_eq!(zoom(&s, &q(5), "Pears.\n").await.0, 200);
    // A gap: accepted.
    assert_eq!(zoom(&s, &q(9), "Plums.\n").await.0, 200);
    assert_eq!(zoom(&s, &q(10), "Half a line").await.0, 200);
    // Far below the last (a sender restarted from an old saved seq), then 0 and 1: new runs;
    // the old run's line in progress is a line of its own, and a caption said before is
    // stored again, not taken for a retry.
    assert_eq!(zoom(&s, &q(2), "Apples.\n").await.0, 200);
    assert_eq!(zoom(&s, &q(0), "Pears.\n").await.0, 200);
    assert_eq!(zoom(&s, &q(1), "Plums.\n").await.0, 200);
    let want = [
        "Apples.",
        "Pears.",
        "Plums.",
        "Half a line",
        "Apples.",
        "Pears.",
        "Plums.",
    ];
    assert_eq!(transcript(&s).await, want);
    assert_eq!(
        metric(&s, "babelcast_ingest_retries_total{format=\"zoom\"}").await,
        1
    );
    assert_eq!(
        metric(&s, "babelcast_ingest_seq_restarts_total{format=\"zoom\"}").await,
        2
    );

    // The last post's body survives a restart: its retry is still a retry, another body
    // under its seq still new text.
    let last = zoom(&s, &q(1), "Plums.\n").await;
    s.restart().await;
    assert_eq!(zoom(&s, &q(1), "Plums.\n").await, last);
    assert_eq!(zoom(&s, &q(1), "Cherries.\n").await.0, 200);
    let mut want = want.to_vec();
    want.push("Cherries.");
    assert_eq!(transcript(&s).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_in_progress_is_committed_at_graceful_shutdown() {
    // Silence never commits in this test (`IDLE_COMMIT_NEVER_MS`): only the shutdown can.
    let mut s = TestServer::start().await;
    assert_eq!(
        zoom(&s, "seq=1&lang=en-US", "Unfinished business").await.0,
        200
    );
    assert!(transcript(&s).await.is_empty(), "still in progress");
    s.restart().await;
    assert_eq!(transcript(&s).await, ["Unfinished business"]);
    // The stream goes on with an empty line: nothing is committed twice.
    assert_eq!(zoom(&s, "seq=2&lang=en-US", "Next.\n").await.0, 200);
    assert_eq!(transcript(&s).await, ["Unfinished business", "Next."]);
}

/// A line committed by silence survives `kill -9`, and a line still in progress when the
/// process is killed is committed by the silence after the restart, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_committed_by_silence_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = format!("[ingest]\nidle_commit_ms = {IDLE_MS}\n");
    let zoom_url = |b: &BinServer, seq: u64| {
        let path = TestServer::channel_path("en", "captions/zoom");
        b.http(&format!(
            "{path}?token={}&seq={seq}&lang=en-US",
            token("en")
        ))
    };
    let mut bin = BinServer::start_with(tmp.path(), &extra).await;
    let mut l = bin.listen("en", None).await;
    assert_eq!(
        post(&zoom_url(&bin, 1), "text/plain", "Committed by silence")
            .await
            .0,
        200
    );
    lines_then_no_partial(&mut l, &["Committed by silence"]).await;
    assert_eq!(
        post(&zoom_url(&bin, 2), "text/plain", "Still typing")
            .await
            .0,
        200
    );
    bin.kill9().await;

    let bin = BinServer::start_with(tmp.path(), &extra).await;
    let mut l = bin.listen("en", None).await;
    let want = ["Committed by silence", "Still typing"];
    lines_then_no_partial(&mut l, &want).await;
    let db = open_db(tmp.path());
    let lines: Vec<String> = db
        .prepare("SELECT text FROM events WHERE channel = 'en' AND kind = 'line' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(lines, want);
}

/// A post refused while an interpreter is on air (`403 not_on_air`) leaves no text behind:
/// nothing of it reaches the transcript later, and its seq is free for the sender's retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_refused_while_an_interpreter_is_on_air_leaves_nothing_behind() {
    let s = server().await;
    let mut booth = s.publish_as("en", "Anna").await;
    booth
        .send_json(serde_json::json!({"type": "final", "text": "Anna speaking."}))
        .await;
    assert_eq!(booth.recv_event().await["type"], "ack");
    let (st, body) = zoom(&s, "seq=1&lang=en-US", "Refused words").await;
    assert_eq!(st, 403, "{body}");
    assert!(body.contains("not_on_air"), "{body}");
    booth.ws.close(None).await.unwrap();
    drop(booth);
    let ch = s.server().hub().channel(EVENT, "en").unwrap();
    poll_until("the interpreter to leave", || async {
        (!ch.booth.any_on_air()).then_some(())
    })
    .await;
    let mut l = s.listen("en", None).await;
    assert_eq!(zoom(&s, "seq=1&lang=en-US", "Accepted.").await.0, 200);
    // History first (Anna's line), then the new line once the silence commits it.
    lines_then_no_partial(&mut l, &["Anna speaking.", "Accepted."]).await;
    let texts: Vec<String> = s
        .db()
        .prepare("SELECT text FROM events WHERE kind = 'line' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(texts, ["Anna speaking.", "Accepted."]);
}
