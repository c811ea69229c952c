//! Caption text reaches listeners exactly as the publisher sent it: live, from history, from the
//! store after a restart, and in the JSON transcript.
mod common;
use babelcast::protocol::{ClientMsg, ServerMsg};
use common::*;
use serde_json::Value;

fn tricky() -> Vec<String> {
    vec![
        "Plain line.".into(),
        "  Leading and trailing spaces are kept.  ".into(),
        "He said \"你好\" <b>&amp;</b> \\ back\\slash".into(),
        "Two\nlines\r\nand a tab\there.".into(),
        "Emoji 🎉👩🏽‍💻 and combining é (e\u{301}).".into(),
        "مرحبا بكم في المؤتمر".into(),
        "Control \u{1} characters \u{7f} survive.".into(),
        "--> not a cue arrow in the JSON".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_is_delivered_and_stored_byte_for_byte() {
    let mut s = TestServer::start().await;
    let texts = tricky();
    let mut l = s.listen("floor", None).await;
    // Over HTTP as JSON (before a booth publisher is on air: HTTP is for captioning tools that
    // publish alone).
    let http_text = "Posted over HTTP: \"quotes\" & <tags>\n";
    let r = reqwest::Client::new()
        .post(s.http(&TestServer::channel_path("floor", "captions")))
        .bearer_auth(token("floor"))
        .body(
            ClientMsg::Final {
                text: http_text.into(),
                id: None,
            }
            .to_json(),
        )
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut p = s.publish("floor").await;
    for t in &texts {
        assert!(matches!(
            p.publish_final(t, None).await,
            ServerMsg::Ack { .. }
        ));
    }
    let mut all = vec![http_text.to_string()];
    all.extend(texts.iter().cloned());

    for t in &all {
        assert_eq!(&l.next_line().await.1, t);
    }
    drop((l, p));
    s.restart().await;
    let mut l = s.listen("floor", Some(0)).await;
    for t in &all {
        assert_eq!(&l.next_line().await.1, t, "after a restart");
    }
    let url = s.http(&format!(
        "{}?format=json",
        TestServer::channel_path("floor", "transcript")
    ));
    let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let stored: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(stored, all.iter().map(String::as_str).collect::<Vec<_>>());
}
