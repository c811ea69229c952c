//! The interpreters' workflow: booth partners, handover, relay sources, corrections, audience
//! feedback and language alerts (docs/interpreting.md).
mod common;
use std::time::Duration;

use babelcast::protocol::{ClientMsg, ErrorCode, FeedbackKind, ServerMsg};
use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_partner_is_on_air_and_the_other_is_refused() {
    let s = TestServer::start().await;
    let (mut a, mut b) = tokio::join!(s.publish_as("en", "Anna"), s.publish_as("en", "Ben"));
    let (a_id, b_id) = (a.publisher_id(), b.publisher_id());
    // Exactly one of the two racing partners is on air.
    let booth = a.booth_until(|b| b.publishers.len() == 2).await;
    let on_air = member_id(&booth.on_air).expect("a partner on air");
    assert!(on_air == a_id || on_air == b_id);
    let (on, standby) = if on_air == a_id {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    standby.send_final("I am not on air.").await;
    standby.expect_error(ErrorCode::NotOnAir).await;
    standby.send_partial("Nor").await;
    standby.expect_error(ErrorCode::NotOnAir).await;
    let ack = on.publish_final("I am on air.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
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
    assert_eq!(a.publish_final("Anna speaking.", None).await, acked(1));
    b.send(ClientMsg::HandoverRequest).await;
    a.booth_until(|b| member_name(&b.request) == Some("Ben"))
        .await;
    a.send(ClientMsg::HandoverAccept).await;
    b.booth_until(|b| member_name(&b.on_air) == Some("Ben"))
        .await;
    assert_eq!(b.publish_final("Ben speaking.", None).await, acked(3));
    a.send_final("Anna again.").await;
    a.expect_error(ErrorCode::NotOnAir).await;

    assert_eq!(l.next_line().await.0, 1);
    match l.next_msg().await {
        ServerMsg::Handover {
            seq,
            from,
            to,
            reason,
            ..
        } => assert_eq!(
            (seq, from.as_deref(), to.as_deref(), &*reason),
            (2, Some("Anna"), Some("Ben"), "request")
        ),
        other => panic!("expected a handover, got {other:?}"),
    }
    assert_eq!(l.next_line().await.0, 3);

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

/// The silence rule's time in the take-over test, in seconds (the shortest there is).
const TAKEOVER_AFTER: u64 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_partner_can_be_taken_over_after_the_timeout() {
    let s = TestServer::start_with(|c| c.booth.takeover_after_secs = TAKEOVER_AFTER).await;
    let mut l = s.listen("en", None).await;
    let mut a = s.publish_as("en", "Anna").await;
    let mut b = s.publish_as("en", "Ben").await;
    a.send_partial("Anna is").await;
    b.send(ClientMsg::Take).await;
    b.expect_error(ErrorCode::HandoverRefused).await;
    // Anna last spoke before a listener saw her partial; once she has been silent for the
    // rule's time since then (and says nothing more), Ben's one take goes through.
    loop {
        if let ServerMsg::Partial { text } = l.recv_msg().await {
            if text == "Anna is" {
                break;
            }
        }
    }
    let silent_since = tokio::time::Instant::now();
    tokio::time::sleep_until(silent_since + Duration::from_secs(TAKEOVER_AFTER)).await;
    b.send(ClientMsg::Take).await;
    loop {
        match b.recv_frame().await {
            Received::Booth(booth) if member_name(&booth.on_air) == Some("Ben") => break,
            Received::Msg(ServerMsg::Error { code, message, .. }) => {
                panic!("take refused after {TAKEOVER_AFTER} s of silence: {code:?} {message}")
            }
            _ => {}
        }
    }
    let ack = b.publish_final("Ben took over.", None).await;
    assert_eq!(ack, acked(2), "seq 1 is the handover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_takes_the_channel_off_air_and_the_next_publisher_takes_it() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let a = s.publish_as("en", "Anna").await;
    let mut b = s.publish_as("en", "Ben").await;
    drop(a);
    b.booth_until(|b| b.on_air.is_none()).await;
    loop {
        match l.recv_msg().await {
            ServerMsg::Status(st) if !st.on_air && st.publishers == 1 => break,
            ServerMsg::Status(_) => {}
            other => panic!("expected a status, got {other:?}"),
        }
    }
    // Ben simply publishes: an idle channel is taken by the next publisher.
    let ack = b.publish_final("Ben here.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    match l.next_msg().await {
        ServerMsg::Handover {
            from, to, reason, ..
        } => assert_eq!(
            (from.as_deref(), to.as_deref(), &*reason),
            (Some("Anna"), Some("Ben"), "take")
        ),
        other => panic!("expected a handover, got {other:?}"),
    }
    // The status (coalesced) shows the channel on air again.
    l.status_until(|st| st.on_air).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_by_the_on_air_partner_or_the_author_only() {
    let s = TestServer::start().await;
    let mut a = s.publish_as("en", "Anna").await;
    let mut b = s.publish_as("en", "Ben").await;
    assert_eq!(
        a.publish_final("Anna wrote this lin.", None).await,
        acked(1)
    );
    b.send(ClientMsg::HandoverRequest).await;
    a.booth_until(|b| b.request.is_some()).await;
    a.send(ClientMsg::HandoverAccept).await;
    b.booth_until(|b| member_name(&b.on_air) == Some("Ben"))
        .await;
    assert_eq!(b.publish_final("Ben wrote this lne.", None).await, acked(3));
    // Anna, now on standby, may still correct her own line...
    a.send(edit(1, "Anna wrote this line.")).await;
    assert_eq!(a.next_msg().await, acked(4));
    // ...but not Ben's.
    a.send(edit(3, "Not mine.")).await;
    a.expect_error(ErrorCode::NotOnAir).await;
    // Ben is on air and may correct anything.
    b.send(edit(3, "Ben wrote this line.")).await;
    assert_eq!(b.next_msg().await, acked(5));

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
    let slower = ClientMsg::Feedback {
        kind: FeedbackKind::Slower,
    };
    l1.send(slower.clone()).await;
    l1.send(slower.clone()).await;
    l1.expect_error(ErrorCode::RateLimited).await;
    l2.send(slower).await;
    // A kind the protocol does not have (so no `ClientMsg` can carry it).
    l2.send_text(r#"{"type":"feedback","kind":"wat"}"#).await;
    l2.expect_error(ErrorCode::BadMessage).await;
    let b = p.booth_until(|b| b.feedback.slower == 2).await;
    assert_eq!(b.feedback.lost, 0);
    assert_eq!(b.listeners, 2);
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
        p.send_final(text).await;
    }
    // Acks and booth updates interleave; read until the alert shows.
    p.booth_until(|b| b.language_alert.as_deref() == Some("fr"))
        .await;
    p.send_final("Sorry, I was speaking into the wrong channel, here is the English again.")
        .await;
    p.booth_until(|b| b.language_alert.is_none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_can_follow_their_source_and_the_relay_graph_is_public() {
    let s = TestServer::start().await;
    let mut floor = s.publish_as("floor", "Speaker").await;
    floor
        .publish_final("Good morning and welcome to the conference.", None)
        .await;
    let fr = s.publish_as("fr", "Claire").await;
    match fr.hello_msg() {
        ServerMsg::Hello { source, .. } => assert_eq!(source.as_deref(), Some("en")),
        other => panic!("expected a hello, got {other:?}"),
    }
    let mut en = s.publish_as("en", "Anna").await;
    let follow = ClientMsg::FollowSource { on: true };
    en.send(follow.clone()).await;
    match en.next_msg().await {
        ServerMsg::Source { channel, .. } => assert_eq!(channel, "floor"),
        other => panic!("expected the source marker, got {other:?}"),
    }
    match en.next_msg().await {
        ServerMsg::Line { text, .. } => {
            assert_eq!(text, "Good morning and welcome to the conference.")
        }
        other => panic!("expected the source's line, got {other:?}"),
    }
    floor
        .publish_final("Second line from the floor.", None)
        .await;
    loop {
        if let ServerMsg::Line { text, .. } = en.next_msg().await {
            assert_eq!(text, "Second line from the floor.");
            break;
        }
    }
    let floor_pub = s.publish_as("floor", "Other").await;
    drop(floor_pub);
    let mut floor_listener_free = s.publish_as("zh", "Li").await;
    floor_listener_free.send(follow.clone()).await;
    let marker = floor_listener_free.next_msg().await;
    assert!(matches!(marker, ServerMsg::Source { .. }), "{marker:?}");
    let mut floor_only = s.publish_as("floor", "Again").await;
    floor_only.send(follow).await;
    floor_only.expect_error(ErrorCode::NoSource).await;

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

/// A correction of line `of`.
fn edit(of: u64, text: &str) -> ClientMsg {
    ClientMsg::Edit {
        of,
        text: text.into(),
    }
}
