//! HTTP ingest in the Zoom, YouTube and StreamText caption formats: append/commit semantics,
//! idempotent retries, the answers each service gives, and malformed requests refused with a
//! clear 4xx while nothing is stored.
mod common;
use common::*;
use serde_json::Value;

fn url(s: &TestServer, channel: &str, what: &str, query: &str) -> String {
    let path = TestServer::channel_path(channel, &format!("captions/{what}"));
    s.http(&format!("{path}?{query}"))
}

async fn post(url: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "text/plain; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

fn last_seq(s: &TestServer, channel: &str) -> u64 {
    s.server().hub().channel(EVENT, channel).unwrap().last_seq()
}

fn assert_timestamp(body: &str) {
    assert!(
        babelcast::formats::timestamp::parse(body).is_some(),
        "answer must be a timestamp like 2024-05-01T09:30:00.000, got {body:?}"
    );
}

fn assert_error(status: u16, body: &str, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    let v: Value = serde_json::from_str(body).expect("JSON error body");
    assert_eq!(v["code"], want_code, "{body}");
    assert!(!v["message"].as_str().unwrap_or("").is_empty(), "{body}");
}

/// The next line, skipping partials and status.
async fn next_line(l: &mut WsClient) -> Value {
    loop {
        let v = l.recv_event().await;
        if v["type"] == "line" {
            return v;
        }
        assert_eq!(v["type"], "partial", "expected a line, got {v}");
    }
}

/// Waits for a partial with exactly `text`, skipping other partials and status.
async fn partial(l: &mut WsClient, text: &str) {
    loop {
        let v = l.recv_event().await;
        assert_eq!(v["type"], "partial", "expected partial {text:?}, got {v}");
        if v["text"] == text {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_appends_commits_at_line_breaks_and_answers_a_timestamp() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let q = |seq: u64| format!("seq={seq}&lang=en-US&token={}", token("en"));

    let (st, body) = post(&url(&s, "en", "zoom", &q(1)), "Hello everyone, ").await;
    assert_eq!(st, 200, "{body}");
    assert_timestamp(&body);
    partial(&mut l, "Hello everyone, ").await;
    assert_eq!(
        last_seq(&s, "en"),
        0,
        "no line break yet: nothing committed"
    );

    let (st, _) = post(
        &url(&s, "en", "zoom", &q(2)),
        "and welcome to the conference.\nToday we",
    )
    .await;
    assert_eq!(st, 200);
    let line = next_line(&mut l).await;
    assert_eq!(line["seq"], 1);
    assert_eq!(
        line["text"],
        "Hello everyone, and welcome to the conference."
    );
    partial(&mut l, "Today we").await;

    let (st, _) = post(&url(&s, "en", "zoom", &q(3)), " will talk about trade.\r\n").await;
    assert_eq!(st, 200);
    assert_eq!(
        next_line(&mut l).await["text"],
        "Today we will talk about trade."
    );

    let r = reqwest::get(url(&s, "en", "zoom/seq", &format!("token={}", token("en"))))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_retry_with_the_same_seq_is_idempotent() {
    let s = TestServer::start().await;
    let q = |seq: u64| format!("seq={seq}&lang=en-US&token={}", token("en"));
    let first = post(&url(&s, "en", "zoom", &q(1)), "One line.\nTwo lines.\n").await;
    assert_eq!(first.0, 200);
    assert_eq!(last_seq(&s, "en"), 2);
    let again = post(&url(&s, "en", "zoom", &q(1)), "One line.\nTwo lines.\n").await;
    assert_eq!(again, first, "a retry gets the same answer");
    assert_eq!(last_seq(&s, "en"), 2, "a retry stores nothing twice");

    // A gap is accepted (tests/real_senders.rs covers every seq rule).
    let (st, _) = post(&url(&s, "en", "zoom", &q(3)), "Three.\n").await;
    assert_eq!(st, 200);
    assert_eq!(last_seq(&s, "en"), 3);
    // Caption software that restarts begins again at 1.
    let (st, _) = post(&url(&s, "en", "zoom", &q(1)), "Restarted.\n").await;
    assert_eq!(st, 200);
    assert_eq!(last_seq(&s, "en"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_refusals_look_like_zooms() {
    let s = TestServer::start().await;
    let good = format!("seq=1&lang=en-US&token={}", token("en"));
    // No token, a wrong token, no seq: 403, as Zoom answers them.
    let (st, body) = post(&url(&s, "en", "zoom", "seq=1&lang=en-US"), "x\n").await;
    assert_error(st, &body, 403, "unauthorized");
    let (st, body) = post(&url(&s, "en", "zoom", "seq=1&token=wrong-token-1"), "x\n").await;
    assert_error(st, &body, 403, "unauthorized");
    let (st, body) = post(
        &url(&s, "en", "zoom", &format!("token={}", token("en"))),
        "x\n",
    )
    .await;
    assert_error(st, &body, 403, "missing_seq");
    // Another channel's token does not publish here.
    let (st, _) = post(
        &url(&s, "en", "zoom", &format!("seq=1&token={}", token("fr"))),
        "x\n",
    )
    .await;
    assert_eq!(st, 403);
    // Not a POST: 405.
    let r = reqwest::get(url(&s, "en", "zoom", &good)).await.unwrap();
    assert_eq!(r.status(), 405);
    // Malformed: 400, nothing stored.
    let (st, body) = post(
        &url(&s, "en", "zoom", &format!("seq=x&token={}", token("en"))),
        "x\n",
    )
    .await;
    assert_error(st, &body, 400, "bad_seq");
    let (st, body) = post(&url(&s, "en", "zoom", &good), vec![b'a', 0xff, 0xfe, b'\n']).await;
    assert_error(st, &body, 400, "not_utf8");
    let (st, body) = post(
        &url(
            &s,
            "en",
            "zoom",
            &format!("seq=1&lang=english&token={}", token("en")),
        ),
        "x\n",
    )
    .await;
    assert_error(st, &body, 400, "bad_lang");
    let (st, body) = post(&url(&s, "nope", "zoom", &good), "x\n").await;
    assert_error(st, &body, 404, "unknown_channel");
    let big = "a".repeat(70 * 1024);
    let (st, body) = post(&url(&s, "en", "zoom", &good), big).await;
    assert_error(st, &body, 413, "body_too_large");
    assert_eq!(last_seq(&s, "en"), 0, "nothing was stored");
    // The bearer header works too, and the refused posts did not take seq 1.
    let r = reqwest::Client::new()
        .post(url(&s, "en", "zoom", "seq=1&lang=en-US"))
        .bearer_auth(token("en"))
        .body("Finally.\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(last_seq(&s, "en"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn youtube_cues_become_lines_and_empty_bodies_are_heartbeats() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let q = |seq: u64| format!("seq={seq}&token={}", token("en"));

    // Heartbeat: no seq needed, the answer is the server time, nothing stored.
    let (st, body) = post(
        &url(&s, "en", "youtube", &format!("token={}", token("en"))),
        "",
    )
    .await;
    assert_eq!(st, 200);
    assert_timestamp(&body);
    assert_eq!(last_seq(&s, "en"), 0);

    let body = "2024-05-01T09:30:00.000 region:reg1#cue1\nGood morning, delegates.\n2024-05-01T09:30:02.500\nThe first session<br>begins now.\n";
    let (st, answer) = post(&url(&s, "en", "youtube", &q(1)), body).await;
    assert_eq!(st, 200, "{answer}");
    assert_timestamp(&answer);
    assert_eq!(next_line(&mut l).await["text"], "Good morning, delegates.");
    assert_eq!(
        next_line(&mut l).await["text"],
        "The first session\nbegins now."
    );

    // A retry stores nothing twice.
    let (st, again) = post(&url(&s, "en", "youtube", &q(1)), body).await;
    assert_eq!((st, again.as_str()), (200, answer.as_str()));
    assert_eq!(last_seq(&s, "en"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn youtube_malformed_bodies_store_nothing() {
    let s = TestServer::start().await;
    let u = url(&s, "en", "youtube", &format!("seq=1&token={}", token("en")));
    let (st, body) = post(&u, "Hello without a time\n").await;
    assert_error(st, &body, 400, "text_before_timestamp");
    let (st, body) = post(
        &u,
        "2024-05-01T09:30:00.000\nfine\n2024-05-01T09:61:00.000\nbad\n",
    )
    .await;
    assert_error(st, &body, 400, "bad_timestamp");
    assert!(body.contains("line 3"), "{body}");
    let (st, body) = post(
        &u,
        format!("2024-05-01T09:30:00.000\n{}\n", "a".repeat(4001)),
    )
    .await;
    assert_error(st, &body, 413, "text_too_long");
    let (st, body) = post(
        &url(&s, "en", "youtube", &format!("token={}", token("en"))),
        "2024-05-01T09:30:00.000\nno seq\n",
    )
    .await;
    assert_error(st, &body, 400, "missing_seq");
    let (st, _) = post(
        &url(&s, "en", "youtube", "seq=1"),
        "2024-05-01T09:30:00.000\nx\n",
    )
    .await;
    assert_eq!(
        st, 401,
        "YouTube's route answers a missing token like the other v1 routes"
    );
    assert_eq!(last_seq(&s, "en"), 0, "nothing was stored");
    // The refused posts did not use seq 1.
    let (st, _) = post(&u, "2024-05-01T09:30:00.000\nNow it is right.\n").await;
    assert_eq!(st, 200);
    assert_eq!(last_seq(&s, "en"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamtext_applies_corrections_and_commits_on_cr_lf() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let q = |seq: u64| format!("seq={seq}&lang=en&token={}", token("en"));

    let (st, body) = post(
        &url(&s, "en", "streamtext", &q(1)),
        "This is a test\nWith 2 lins\u{8}es and a delete charactre\u{7f}\u{7f}er",
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_timestamp(&body);
    assert_eq!(next_line(&mut l).await["text"], "This is a test");
    partial(&mut l, "With 2 lines and a delete character").await;

    // Text since the last post; a CR, a LF split across posts is one line break.
    let (st, _) = post(&url(&s, "en", "streamtext", &q(2)), ".\r").await;
    assert_eq!(st, 200);
    assert_eq!(
        next_line(&mut l).await["text"],
        "With 2 lines and a delete character."
    );
    let (st, _) = post(&url(&s, "en", "streamtext", &q(3)), "\nNext\n").await;
    assert_eq!(st, 200);
    assert_eq!(next_line(&mut l).await["text"], "Next");
    assert_eq!(last_seq(&s, "en"), 3);

    // StreamText may skip seqs (it resends what failed under a later one); a retry of the
    // same seq applies nothing.
    let (st, _) = post(&url(&s, "en", "streamtext", &q(5)), "Again\n").await;
    assert_eq!(st, 200);
    let (st, _) = post(&url(&s, "en", "streamtext", &q(5)), "Again\n").await;
    assert_eq!(st, 200);
    assert_eq!(last_seq(&s, "en"), 4);

    // Malformed: 400, nothing stored.
    let (st, body) = post(
        &url(
            &s,
            "en",
            "streamtext",
            &format!("lang=en&token={}", token("en")),
        ),
        "x\n",
    )
    .await;
    assert_error(st, &body, 400, "missing_seq");
    let (st, body) = post(&url(&s, "en", "streamtext", &q(6)), vec![0xc3, b'\n']).await;
    assert_error(st, &body, 400, "not_utf8");
    assert_eq!(last_seq(&s, "en"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_keep_their_own_state_per_channel() {
    let s = TestServer::start().await;
    let en = format!("seq=1&token={}", token("en"));
    let fr = format!("seq=1&token={}", token("fr"));
    assert_eq!(post(&url(&s, "en", "zoom", &en), "English ").await.0, 200);
    assert_eq!(
        post(&url(&s, "fr", "zoom", &fr), "Bonjour à tous.\n")
            .await
            .0,
        200
    );
    assert_eq!(
        post(&url(&s, "en", "streamtext", &en), "Other\n").await.0,
        200
    );
    assert_eq!(last_seq(&s, "fr"), 1);
    assert_eq!(
        last_seq(&s, "en"),
        1,
        "the StreamText line; Zoom's line is still in progress"
    );
    let en2 = format!("seq=2&token={}", token("en"));
    assert_eq!(post(&url(&s, "en", "zoom", &en2), "words.\n").await.0, 200);
    let ch = s.server().hub().channel(EVENT, "en").unwrap();
    let hub = s.server().hub().clone();
    let records = tokio::task::spawn_blocking(move || hub.store.range(EVENT, "en", 0, 10))
        .await
        .unwrap()
        .unwrap();
    let texts: Vec<_> = records.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["Other", "English words."]);
    assert_eq!(ch.last_seq(), 2);
}

/// A Zoom stream survives `kill -9`: the next seq is accepted after the restart, a retry of
/// the last post stores nothing twice, and the line in progress goes on where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_stream_state_survives_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let zoom = |addr: std::net::SocketAddr, what: &str, seq: Option<u64>| {
        let path = TestServer::channel_path("en", &format!("captions/{what}"));
        let seq = seq
            .map(|n| format!("seq={n}&lang=en-US&"))
            .unwrap_or_default();
        format!("http://{addr}{path}?{seq}token={}", token("en"))
    };
    let mut bin = BinServer::start(tmp.path()).await;
    let (st, _) = post(&zoom(bin.addr, "zoom", Some(1)), "Good morning, ").await;
    assert_eq!(st, 200);
    let (st, reply2) = post(&zoom(bin.addr, "zoom", Some(2)), "everyone.\nOur first ").await;
    assert_eq!(st, 200);
    bin.kill9().await;

    let bin = BinServer::start(tmp.path()).await;
    let seq = reqwest::get(zoom(bin.addr, "zoom/seq", None))
        .await
        .unwrap();
    assert_eq!(
        seq.text().await.unwrap(),
        "2",
        "the last seq survives the restart"
    );
    // The caption software did not see the answer to seq 2 and retries it.
    let again = post(&zoom(bin.addr, "zoom", Some(2)), "everyone.\nOur first ").await;
    assert_eq!(
        again,
        (200, reply2),
        "a retry after the restart gets the first answer"
    );
    let (st, body) = post(&zoom(bin.addr, "zoom", Some(3)), "speaker is here.\n").await;
    assert_eq!(st, 200, "{body}");

    let db = open_db(tmp.path());
    let lines: Vec<String> = db
        .prepare("SELECT text FROM events WHERE channel = 'en' AND kind = 'line' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        lines,
        ["Good morning, everyone.", "Our first speaker is here."],
        "nothing lost, nothing doubled, the line in progress went on"
    );
}

/// A post whose first attempt failed (disk full) and whose retry succeeded leaves the stream
/// state saved: after a restart the next seq is accepted, not refused as a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_post_is_saved_for_the_next_restart() {
    let mut s = TestServer::start().await;
    let q = |seq: u64| format!("seq={seq}&lang=en-US&token={}", token("en"));
    let (st, _) = post(&url(&s, "en", "zoom", &q(1)), "First.\n").await;
    assert_eq!(st, 200);
    // The disk fills up (a real SQLITE_FULL): a long line needs new pages.
    let second = format!(
        "Second: {}\n",
        "a long point the speaker makes. ".repeat(100)
    );
    s.server().hub().store.set_page_limit(Some(1));
    let (st, body) = post(&url(&s, "en", "zoom", &q(2)), second.clone()).await;
    assert_error(st, &body, 503, "storage_unavailable");
    s.server().hub().store.set_page_limit(None);
    let (st, body) = post(&url(&s, "en", "zoom", &q(2)), second).await;
    assert_eq!(st, 200, "{body}");
    s.restart().await;
    let seq = reqwest::get(url(&s, "en", "zoom/seq", &format!("token={}", token("en"))))
        .await
        .unwrap();
    assert_eq!(seq.text().await.unwrap(), "2");
    let (st, body) = post(&url(&s, "en", "zoom", &q(3)), "Third.\n").await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(last_seq(&s, "en"), 3);
}
