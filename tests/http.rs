//! The HTTP API: events with live listener counts, publishing over HTTP, transcripts in every
//! format, health and metrics.
mod common;
use babelcast::protocol::{parse_server, ClientMsg, ErrorCode, ServerMsg};
use common::*;
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_list_channels_with_listener_counts() {
    let s = TestServer::start().await;
    let a = s.listen("en", None).await;
    let _b = s.listen("en", None).await;
    let _c = s.listen("zh", None).await;
    let r = client().get(s.http("/v1/events")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let event = &v["events"][0];
    assert_eq!(event["id"], EVENT);
    assert_eq!(event["title"], "Test conference");
    let channels = event["channels"].as_array().unwrap();
    let ids: Vec<_> = channels.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["floor", "en", "zh", "fr"]);
    let by_id = |id: &str| channels.iter().find(|c| c["id"] == id).unwrap().clone();
    assert_eq!(by_id("en")["listeners"], 2);
    assert_eq!(by_id("zh")["listeners"], 1);
    assert_eq!(by_id("floor")["listeners"], 0);
    assert_eq!(by_id("floor")["lang"], "auto");
    assert_eq!(by_id("fr")["source"], "en");

    // Counts are live: a listener that leaves is no longer counted.
    drop(a);
    poll_until("the en listener count to drop to 1", || async {
        let v: Value = client()
            .get(s.http("/v1/events"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["events"][0]["channels"][1]["listeners"] == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captions_can_be_posted_as_json_or_plain_text() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let url = s.http(&TestServer::channel_path("en", "captions"));

    let r = client()
        .post(&url)
        .bearer_auth(token("en"))
        .json(&ClientMsg::Final {
            text: "Posted as JSON.".into(),
            id: Some("j1".into()),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The exact body, as a client without the protocol's types reads it.
    let ack: Value = r.json().await.unwrap();
    assert_eq!(ack, json!({"type": "ack", "seq": 1, "id": "j1"}));

    let r = client()
        .post(&url)
        .bearer_auth(token("en"))
        .header("content-type", "text/plain; charset=utf-8")
        .body("Posted as plain text.\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(parse_server(&r.text().await.unwrap()), Some(acked(2)));

    // The token may also be in the query; partials are accepted without an ack.
    let r = client()
        .post(format!("{url}?token={}", token("en")))
        .json(&ClientMsg::Partial {
            text: "Typing".into(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    assert_eq!(l.next_line().await.1, "Posted as JSON.");
    assert_eq!(l.next_line().await.1, "Posted as plain text.");
    assert_eq!(
        l.next_msg().await,
        ServerMsg::Partial {
            text: "Typing".into()
        }
    );

    // Refusals carry the protocol's error shape.
    let r = client()
        .post(&url)
        .bearer_auth(token("en"))
        .json(&ClientMsg::Final {
            text: String::new(),
            id: None,
        })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert_eq!(refusal_code(&body), Some(ErrorCode::EmptyText), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_needs_the_channel_token_and_an_existing_channel() {
    let s = TestServer::start().await;
    let url = s.http(&TestServer::channel_path("en", "captions"));
    let post = |url: String, token: Option<String>| {
        let mut req = client()
            .post(url)
            .header("content-type", "text/plain")
            .body("Hello.");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let r = post(url.clone(), None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(
        post(url.clone(), Some("wrong-token-123".into()))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post(url.clone(), Some(token("zh"))).await.unwrap().status(),
        401
    );
    let missing = s.http("/v1/events/conf/channels/nope/captions");
    assert_eq!(
        post(missing, Some(token("en"))).await.unwrap().status(),
        404
    );
    let missing = s.http("/v1/events/nope/channels/en/transcript");
    assert_eq!(client().get(missing).send().await.unwrap().status(), 404);
    // Nothing was stored.
    assert_eq!(s.server().hub().channel(EVENT, "en").unwrap().last_seq(), 0);
}

/// Parses `HH:MM:SS.mmm` (or `,mmm`) into milliseconds.
fn stamp_ms(s: &str) -> i64 {
    let s = s.replace(',', ".");
    let (hms, ms) = s.split_once('.').unwrap();
    let parts: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + ms.parse::<i64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts_export_as_txt_vtt_srt_and_json() {
    let s = TestServer::start().await;
    let mut p = s.publish("en").await;
    let lines = [
        "Good morning and welcome.",
        "Our first speaker is <Dr. Ada> & friends.",
        "Thank you.",
    ];
    for line in lines {
        let ack = p.publish_final(line, None).await;
        assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    }
    p.send(ClientMsg::Edit {
        of: 3,
        text: "Thank you very much.".into(),
    })
    .await;
    assert_eq!(p.next_msg().await, acked(4));

    let get = |format: &str| {
        let url = s.http(&format!(
            "{}?format={format}",
            TestServer::channel_path("en", "transcript")
        ));
        async move {
            let r = client().get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let ct = r.headers()["content-type"].to_str().unwrap().to_string();
            (ct, r.text().await.unwrap())
        }
    };

    let (ct, txt) = get("txt").await;
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert_eq!(
        txt,
        "Good morning and welcome.\nOur first speaker is <Dr. Ada> & friends.\nThank you very much.\n"
    );

    let (ct, vtt) = get("vtt").await;
    assert!(ct.starts_with("text/vtt"), "{ct}");
    assert!(vtt.starts_with("WEBVTT\n\n"), "{vtt}");
    assert!(
        vtt.contains("Our first speaker is &lt;Dr. Ada&gt; &amp; friends."),
        "{vtt}"
    );
    assert!(vtt.contains("Thank you very much."), "{vtt}");
    let cues: Vec<(i64, i64)> = vtt
        .lines()
        .filter_map(|l| l.split_once(" --> "))
        .map(|(a, b)| (stamp_ms(a), stamp_ms(b)))
        .collect();
    assert_eq!(cues.len(), 3, "{vtt}");
    // Timed from the first line: it starts at zero, cues are ordered and each lasts a while.
    assert_eq!(cues[0].0, 0);
    for (i, (start, end)) in cues.iter().enumerate() {
        assert!(end > start, "cue {i}: {start} --> {end}");
        assert!(end - start <= 7_000, "cue {i} is too long");
        if i > 0 {
            assert!(*start >= cues[i - 1].0, "cues out of order: {vtt}");
        }
    }

    let (ct, srt) = get("srt").await;
    assert!(ct.starts_with("application/x-subrip"), "{ct}");
    assert!(srt.starts_with("1\n00:00:00,000 --> 00:00:0"), "{srt}");
    assert!(srt.contains("\n\n2\n") && srt.contains("\n\n3\n"), "{srt}");
    assert!(
        srt.contains("Our first speaker is <Dr. Ada> & friends."),
        "{srt}"
    );

    let (ct, body) = get("json").await;
    assert!(ct.starts_with("application/json"), "{ct}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["channel"], "en");
    let texts: Vec<_> = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, [lines[0], lines[1], "Thank you very much."]);
    assert_eq!(v["lines"][0]["start_ms"], 0);
    assert_eq!(v["lines"][2]["edited"], true);
    assert_eq!(v["events"].as_array().unwrap().len(), 4);

    let url = s.http(&format!(
        "{}?format=pdf",
        TestServer::channel_path("en", "transcript")
    ));
    assert_eq!(client().get(url).send().await.unwrap().status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics() {
    let s = TestServer::start().await;
    let r = client().get(s.http("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let _l = s.listen("fr", None).await;
    let r = client().get(s.http("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(text.contains("# TYPE babelcast_listeners gauge"), "{text}");
    assert!(
        text.contains("babelcast_listeners{event=\"conf\",channel=\"fr\"} 1"),
        "{text}"
    );
}
