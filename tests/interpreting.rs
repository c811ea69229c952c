//! The interpreters' workflow: booth partners, handover, relay sources, corrections, audience
//! feedback and language alerts (docs/interpreting.md).
mod common;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Reads booth frames until one satisfies `pred` (booth frames are coalesced updates).
async fn booth_until(c: &mut WsClient, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let v = c.recv().await;
        if v["type"] == "booth" && pred(&v) {
            return v;
        }
    }
}

async fn error_code(c: &mut WsClient) -> String {
    let v = c.recv_event().await;
    assert_eq!(v["type"], "error", "expected an error, got {v}");
    v["code"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_partner_is_on_air_and_the_other_is_refused() {
    let s = TestServer::start().await;
    let (mut a, mut b) = tokio::join!(s.publish_as("en", "Anna"), s.publish_as("en", "Ben"));
    let a_id = a.hello["publisher_id"].as_u64().unwrap();
    let b_id = b.hello["publisher_id"].as_u64().unwrap();
    // Exactly one of the two racing partners is on air.
    let booth = booth_until(&mut a, |v| v["publishers"].as_array().unwrap().len() == 2).await;
    let on_air = booth["on_air"]["id"].as_u64().unwrap();
    assert!(on_air == a_id || on_air == b_id);
    let (on, standby) = if on_air == a_id {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    standby
        .send_json(json!({"type": "final", "text": "I am not on air."}))
        .await;
    assert_eq!(error_code(standby).await, "not_on_air");
    standby
        .send_json(json!({"type": "partial", "text": "Nor"}))
        .await;
    assert_eq!(error_code(standby).await, "not_on_air");
    let ack = on.final_line("I am on air.", None).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // HTTP publishing is refused while a booth partner is on air.
    let r = reqwest::Client::new()
        .post(s.http(&TestServer::channel_path("en", "captions")))
        .bearer_auth(token("en"))
        .body("From HTTP.")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_by_request_is_a_logged_event_that_listeners_see() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let mut a = s.publish_as("en", "Anna").await;
    let mut b = s.publish_as("en", "Ben").await;
    assert_eq!(a.final_line("Anna speaking.", None).await["seq"], 1);
    b.send_json(json!({"type": "handover_request"})).await;
    booth_until(&mut a, |v| v["request"]["name"] == "Ben").await;
    a.send_json(json!({"type": "handover_accept"})).await;
    booth_until(&mut b, |v| v["on_air"]["name"] == "Ben").await;
    assert_eq!(b.final_line("Ben speaking.", None).await["seq"], 3);
    a.send_json(json!({"type": "final", "text": "Anna again."}))
        .await;
    assert_eq!(error_code(&mut a).await, "not_on_air");

    assert_eq!(l.recv_type("line").await["seq"], 1);
    let h = l.recv_event().await;
    assert_eq!(h["type"], "handover", "{h}");
    assert_eq!(
        (
            h["seq"].as_u64(),
            h["from"].as_str(),
            h["to"].as_str(),
            h["reason"].as_str()
        ),
        (Some(2), Some("Anna"), Some("Ben"), Some("request"))
    );
    assert_eq!(l.recv_type("line").await["seq"], 3);

    let txt = reqwest::get(s.http(&TestServer::channel_path("en", "transcript?format=txt")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        txt,
        "Anna speaking.\n[handover: Anna → Ben (request)]\nBen speaking.\n"
    );
    let json: Value =
        reqwest::get(s.http(&TestServer::channel_path("en", "transcript?format=json")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(json["events"][1]["type"], "handover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_partner_can_be_taken_over_after_the_timeout() {
    let s = TestServer::start_with(|c| c.booth.takeover_after_secs = 1).await;
    let mut a = s.publish_as("en", "Anna").await;
    let mut b = s.publish_as("en", "Ben").await;
    a.send_json(json!({"type": "partial", "text": "Anna is"}))
        .await;
    b.send_json(json!({"type": "take"})).await;
    assert_eq!(error_code(&mut b).await, "handover_refused");
    // Poll until the silence rule lets Ben take over (Anna stays silent).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        b.send_json(json!({"type": "take"})).await;
        let v = b.recv().await;
        if v["type"] == "booth" && v["on_air"]["name"] == "Ben" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "take-over never allowed"
        );
        if v["type"] == "error" {
            assert_eq!(v["code"], "handover_refused");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let ack = b.final_line("Ben took over.", None).await;
    assert_eq!(ack["seq"], 2, "seq 1 is the handover: {ack}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_takes_the_channel_off_air_and_the_next_publisher_takes_it() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let a = s.publish_as("en", "Anna").await;
    let mut b = s.publish_as("en", "Ben").await;
    drop(a);
    booth_until(&mut b, |v| v["on_air"].is_null()).await;
    loop {
        let st = l.recv_type("status").await;
        if st["on_air"] == false && st["publishers"] == 1 {
            break;
        }
    }
    // Ben simply publishes: an idle channel is taken by the next publisher.
    let ack = b.final_line("Ben here.", None).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let h = l.recv_type("handover").await;
    assert_eq!(
        (h["from"].as_str(), h["to"].as_str(), h["reason"].as_str()),
        (Some("Anna"), Some("Ben"), Some("take"))
    );
    // The status (coalesced) shows the channel on air again.
    loop {
        let v = l.recv().await;
        if v["type"] == "status" && v["on_air"] == true {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_by_the_on_air_partner_or_the_author_only() {
    let s = TestServer::start().await;
    let mut a = s.publish_as("en", "Anna").await;
    let mut b = s.publish_as("en", "Ben").await;
    assert_eq!(a.final_line("Anna wrote this lin.", None).await["seq"], 1);
    b.send_json(json!({"type": "handover_request"})).await;
    booth_until(&mut a, |v| !v["request"].is_null()).await;
    a.send_json(json!({"type": "handover_accept"})).await;
    booth_until(&mut b, |v| v["on_air"]["name"] == "Ben").await;
    assert_eq!(b.final_line("Ben wrote this lne.", None).await["seq"], 3);
    // Anna, now on standby, may still correct her own line...
    a.send_json(json!({"type": "edit", "of": 1, "text": "Anna wrote this line."}))
        .await;
    assert_eq!(a.recv_event().await["seq"], 4);
    // ...but not Ben's.
    a.send_json(json!({"type": "edit", "of": 3, "text": "Not mine."}))
        .await;
    assert_eq!(error_code(&mut a).await, "not_on_air");
    // Ben is on air and may correct anything.
    b.send_json(json!({"type": "edit", "of": 3, "text": "Ben wrote this line."}))
        .await;
    assert_eq!(b.recv_event().await["seq"], 5);

    let get = |v: &str| {
        let url = s.http(&TestServer::channel_path(
            "en",
            &format!("transcript?format=txt&version={v}"),
        ));
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    assert_eq!(
        get("corrected").await,
        "Anna wrote this line.\n[handover: Anna → Ben (request)]\nBen wrote this line.\n"
    );
    assert_eq!(
        get("as-shown").await,
        "Anna wrote this lin.\n[handover: Anna → Ben (request)]\nBen wrote this lne.\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_is_rate_limited_and_reaches_the_booth() {
    let s = TestServer::start().await;
    let mut p = s.publish_as("en", "Anna").await;
    let mut l1 = s.listen("en", None).await;
    let mut l2 = s.listen("en", None).await;
    l1.send_json(json!({"type": "feedback", "kind": "slower"}))
        .await;
    l1.send_json(json!({"type": "feedback", "kind": "slower"}))
        .await;
    assert_eq!(error_code(&mut l1).await, "rate_limited");
    l2.send_json(json!({"type": "feedback", "kind": "slower"}))
        .await;
    l2.send_json(json!({"type": "feedback", "kind": "wat"}))
        .await;
    assert_eq!(error_code(&mut l2).await, "bad_message");
    let b = booth_until(&mut p, |v| v["feedback"]["slower"] == 2).await;
    assert_eq!(b["feedback"]["lost"], 0);
    assert_eq!(b["listeners"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streak_of_wrong_language_raises_an_alert_that_clears() {
    let s = TestServer::start().await;
    let mut p = s.publish_as("en", "Anna").await;
    for text in [
        "Mesdames et messieurs, bienvenue à cette conférence sur les petites entreprises.",
        "Nous allons parler du financement, des compétences et de la confiance aujourd'hui.",
        "Les petites entreprises emploient la majorité des travailleurs dans le monde entier.",
    ] {
        p.send_json(json!({"type": "final", "text": text})).await;
    }
    // Acks and booth updates interleave; read until the alert shows.
    booth_until(&mut p, |v| v["language_alert"] == "fr").await;
    p.send_json(json!({"type": "final", "text": "Sorry, I was speaking into the wrong channel, here is the English again."})).await;
    booth_until(&mut p, |v| v["language_alert"].is_null()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_can_follow_their_source_and_the_relay_graph_is_public() {
    let s = TestServer::start().await;
    let mut floor = s.publish_as("floor", "Speaker").await;
    floor
        .final_line("Good morning and welcome to the conference.", None)
        .await;
    let fr = s.publish_as("fr", "Claire").await;
    assert_eq!(fr.hello["source"], "en");
    let mut en = s.publish_as("en", "Anna").await;
    en.send_json(json!({"type": "follow_source", "on": true}))
        .await;
    let marker = en.recv_event().await;
    assert_eq!(
        (marker["type"].as_str(), marker["channel"].as_str()),
        (Some("source"), Some("floor"))
    );
    assert_eq!(
        en.recv_event().await["text"],
        "Good morning and welcome to the conference."
    );
    floor.final_line("Second line from the floor.", None).await;
    loop {
        let v = en.recv_event().await;
        if v["type"] == "line" {
            assert_eq!(v["text"], "Second line from the floor.");
            break;
        }
    }
    let floor_pub = s.publish_as("floor", "Other").await;
    drop(floor_pub);
    let mut floor_listener_free = s.publish_as("zh", "Li").await;
    floor_listener_free
        .send_json(json!({"type": "follow_source", "on": true}))
        .await;
    assert_eq!(floor_listener_free.recv_event().await["type"], "source");
    let mut floor_only = s.publish_as("floor", "Again").await;
    floor_only
        .send_json(json!({"type": "follow_source", "on": true}))
        .await;
    assert_eq!(error_code(&mut floor_only).await, "no_source");

    let events: Value = reqwest::get(s.http("/v1/events"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chans = events["events"][0]["channels"].as_array().unwrap();
    let fr = chans.iter().find(|c| c["id"] == "fr").unwrap();
    assert_eq!(fr["source"], "en");
}
