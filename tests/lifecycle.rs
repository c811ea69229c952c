//! Issue 15: an event's life. Scheduled (publishing refused, pages say "not started yet"),
//! live, ended (no new lines, the transcript stays, publishers closed with 4005), archived
//! (listeners closed, gone from the list; the transcript only if published).

mod common;

use babelcast::protocol::{ErrorCode, EventState, ServerMsg};
use common::admin::{refused, Admin};
use common::*;
use serde_json::{json, Value};

async fn get(s: &TestServer, path: &str) -> (u16, Value) {
    let res = reqwest::get(s.http(path)).await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Posts a caption line over HTTP; returns the status and, when refused, the error's code.
async fn post_caption(s: &TestServer, token: &str, text: &str) -> (u16, Option<ErrorCode>) {
    let res = reqwest::Client::new()
        .post(s.http("/v1/events/summit/channels/floor/captions"))
        .bearer_auth(token)
        .body(text.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, refusal_code(&res.text().await.unwrap()))
}

#[tokio::test]
async fn scheduled_live_ended_archived() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    let in_an_hour = babelcast::clock::now_ms() + 3_600_000;
    let (status, ev) = admin
        .post(
            "/v1/admin/events",
            json!({"id": "summit", "title": "Summit", "starts_at": in_an_hour,
                   "channels": [{"id": "floor", "lang": "auto"}]}),
        )
        .await;
    assert_eq!(status, 201, "{ev}");
    assert_eq!(ev["state"], "scheduled");
    let c = admin.issue("summit", "floor", "Captioner").await;
    let token = c["token"].as_str().unwrap().to_string();
    let publish = s.ws("/v1/events/summit/channels/floor/publish");

    // Not started: the list and listeners say so, publishing is refused with a reason.
    let (_, list) = get(&s, "/v1/events").await;
    let listed = list["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "summit")
        .unwrap()
        .clone();
    assert_eq!(listed["state"], "scheduled");
    assert_eq!(listed["starts_at"], in_an_hour);
    let mut floor = WsClient::connect(&s.ws("/v1/events/summit/channels/floor/listen"), None).await;
    assert_eq!(refused_handshake(&publish, Some(&token)).await, 409);
    assert_eq!(
        post_caption(&s, &token, "Too early.").await,
        (409, Some(ErrorCode::EventNotStarted))
    );

    // Started by hand: live at once.
    let (status, ev) = admin.post("/v1/admin/events/summit/start", json!({})).await;
    assert_eq!((status, ev["state"].as_str()), (200, Some("live")), "{ev}");
    // A live event's status leaves `state` out.
    floor.status_until(|st| st.state == EventState::Live).await;
    let mut p = WsClient::connect(&publish, Some(&token)).await;
    let ack = p.publish_final("Welcome.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");

    // Ended: the publisher is closed with the reason, lines are refused, the transcript stays.
    let (status, ev) = admin.post("/v1/admin/events/summit/end", json!({})).await;
    assert_eq!((status, ev["state"].as_str()), (200, Some("ended")), "{ev}");
    let close = p.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4005);
    floor.status_until(|st| st.state == EventState::Ended).await;
    assert_eq!(refused_handshake(&publish, Some(&token)).await, 409);
    assert_eq!(
        post_caption(&s, &token, "Too late.").await,
        (409, Some(ErrorCode::EventEnded))
    );
    let (status, txt) = get(&s, "/v1/events/summit/channels/floor/transcript?format=txt").await;
    assert_eq!(status, 200);
    assert_eq!(txt, Value::String("Welcome.\n".into()));
    // Ending twice changes nothing; starting again is refused.
    assert_eq!(
        admin.post("/v1/admin/events/summit/end", json!({})).await.0,
        200
    );
    refused(
        &admin.post("/v1/admin/events/summit/start", json!({})).await,
        409,
        "bad_state",
    );
    // The schedule of an ended event cannot change.
    refused(
        &admin
            .call(
                "PATCH",
                "/v1/admin/events/summit",
                Some(json!({"ends_at": null})),
            )
            .await,
        409,
        "bad_state",
    );

    // Archived: listeners are closed, the event leaves the list, listening is gone (410),
    // and a private transcript is the admin's only.
    let (status, ev) = admin
        .post("/v1/admin/events/summit/archive", json!({}))
        .await;
    assert_eq!(
        (status, ev["state"].as_str()),
        (200, Some("archived")),
        "{ev}"
    );
    let close = floor.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4005);
    let (_, list) = get(&s, "/v1/events").await;
    assert!(list["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["id"] != "summit"));
    assert_eq!(
        refused_handshake(&s.ws("/v1/events/summit/channels/floor/listen"), None).await,
        410
    );
    let (status, body) = get(&s, "/v1/events/summit/transcript").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_allowed")),
        "{body}"
    );
    assert_eq!(
        get(&s, "/v1/events/summit/channels/floor/transcript")
            .await
            .0,
        403
    );
    assert_eq!(admin.get("/v1/events/summit/transcript").await.0, 200);

    // Published: anyone reads it, in every format, with no token.
    let (status, ev) = admin
        .call(
            "PATCH",
            "/v1/admin/events/summit",
            Some(json!({"transcript_public": true})),
        )
        .await;
    assert_eq!(
        (status, ev["transcript_public"].as_bool()),
        (200, Some(true)),
        "{ev}"
    );
    let (status, page) = get(&s, "/v1/events/summit/transcript").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["title"], "Summit");
    assert_eq!(page["state"], "archived");
    assert_eq!(page["channels"][0]["id"], "floor");
    for f in ["txt", "vtt", "srt", "json"] {
        let (status, body) = get(
            &s,
            &format!("/v1/events/summit/channels/floor/transcript?format={f}"),
        )
        .await;
        assert_eq!(status, 200, "{f}");
        assert!(body.to_string().contains("Welcome."), "{f}: {body}");
    }
    assert_eq!(get(&s, "/e/summit/transcript").await.0, 200);
}

#[tokio::test]
async fn the_schedule_ends_an_event_by_itself() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    let soon = babelcast::clock::now_ms() + 1_500;
    let (status, ev) = admin
        .post(
            "/v1/admin/events",
            json!({"id": "summit", "ends_at": soon, "channels": [{"id": "floor", "lang": "auto"}]}),
        )
        .await;
    assert_eq!((status, ev["state"].as_str()), (201, Some("live")), "{ev}");
    let mut floor = WsClient::connect(&s.ws("/v1/events/summit/channels/floor/listen"), None).await;
    // Within a status period of its end, the page hears that it ended.
    floor.status_until(|st| st.state == EventState::Ended).await;
    assert!(babelcast::clock::now_ms() >= soon);
    let c = admin.issue("summit", "floor", "Late").await;
    assert_eq!(
        post_caption(&s, c["token"].as_str().unwrap(), "After the end.").await,
        (409, Some(ErrorCode::EventEnded))
    );
}

#[tokio::test]
async fn the_config_files_events_are_always_live() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    refused(
        &admin.post("/v1/admin/events/conf/end", json!({})).await,
        403,
        "read_only",
    );
    refused(
        &admin.delete("/v1/admin/events/conf/transcripts").await,
        403,
        "read_only",
    );
    let (_, ev) = admin.get("/v1/admin/events/conf").await;
    assert_eq!(ev["origin"], "file");
    assert_eq!(ev["state"], "live");
}
