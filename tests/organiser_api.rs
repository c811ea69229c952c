//! Issue 15: events and channels at run time through the admin API. Changes take effect on
//! open sockets at once; every refusal has its code and leaves nothing half-applied.

mod common;

use babelcast::protocol::{ClientMsg, ErrorCode, ServerMsg};
use common::admin::{refused, Admin};
use common::*;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// The event list's entry for `id`.
async fn listed(s: &TestServer, id: &str) -> Option<Value> {
    let v: Value = reqwest::get(s.http("/v1/events"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
}

/// What the store holds of an event's definition (rows of event_defs and channel_defs).
fn stored_rows(s: &TestServer, id: &str) -> (i64, Vec<String>) {
    let db = s.db();
    let events: i64 = db
        .query_row("SELECT COUNT(*) FROM event_defs WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    let mut stmt = db
        .prepare("SELECT id FROM channel_defs WHERE event = ?1 ORDER BY position")
        .unwrap();
    let channels = stmt
        .query_map([id], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    (events, channels)
}

#[tokio::test]
async fn a_new_channel_reaches_open_pages_at_once() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    let ev = admin
        .create_event("summit", &[("floor", "auto", None)])
        .await;
    assert_eq!(ev["origin"], "stored");
    assert_eq!(ev["state"], "live");
    // Listed like the config's events, with its state and revision.
    let e = listed(&s, "summit").await.expect("listed");
    assert_eq!(e["state"], "live");
    assert_eq!(e["channels"].as_array().unwrap().len(), 1);
    let rev = e["rev"].as_u64().unwrap();
    assert!(rev >= 1);

    let mut floor = WsClient::connect(&s.ws("/v1/events/summit/channels/floor/listen"), None).await;
    let (status, v) = admin
        .post(
            "/v1/admin/events/summit/channels",
            json!({"id": "es", "lang": "es", "label": "Español", "source": "floor"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    // The open page hears of it: a status with the next revision.
    floor.status_until(|st| st.rev > rev).await;
    let e = listed(&s, "summit").await.unwrap();
    let ids: Vec<_> = e["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["floor", "es"]);
    assert_eq!(e["channels"][1]["interpreted"], true);
    let mut es = WsClient::connect(&s.ws("/v1/events/summit/channels/es/listen"), None).await;
    match es.hello_msg() {
        ServerMsg::Hello { label, source, .. } => {
            assert_eq!(label, "Español");
            assert_eq!(source.as_deref(), Some("floor"));
        }
        other => panic!("expected a hello, got {other:?}"),
    }
    // The change and its author are in the audit log.
    let (_, audit) = admin.get("/v1/admin/audit").await;
    let actions: Vec<_> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [("channel.create", "config"), ("event.create", "config")]
    );
    drop(es.ws.close(None).await);
}

#[tokio::test]
async fn refusals_have_codes_and_change_nothing() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    admin
        .create_event(
            "summit",
            &[("floor", "auto", None), ("en", "en", Some("floor"))],
        )
        .await;
    let before = stored_rows(&s, "summit");
    let (_, shown) = admin.get("/v1/admin/events/summit").await;
    let post = |path: &'static str, body: Value| {
        let admin = admin.clone();
        async move { admin.post(path, body).await }
    };
    refused(
        &post("/v1/admin/events", json!({"id": "Bad Id"})).await,
        400,
        "bad_id",
    );
    refused(
        &post("/v1/admin/events", json!({"id": "summit"})).await,
        409,
        "duplicate_id",
    );
    refused(
        &post("/v1/admin/events", json!({"id": EVENT})).await,
        409,
        "duplicate_id",
    );
    refused(
        &post(
            "/v1/admin/events",
            json!({"id": "loop", "channels": [
                {"id": "a", "lang": "en", "source": "b"},
                {"id": "b", "lang": "fr", "source": "a"}]}),
        )
        .await,
        422,
        "source_cycle",
    );
    refused(
        &post(
            "/v1/admin/events",
            json!({"id": "twice", "channels": [{"id": "a", "lang": "en"}, {"id": "a", "lang": "fr"}]}),
        )
        .await,
        409,
        "duplicate_id",
    );
    refused(
        &post(
            "/v1/admin/events/summit/channels",
            json!({"id": "en", "lang": "en"}),
        )
        .await,
        409,
        "duplicate_id",
    );
    refused(
        &post(
            "/v1/admin/events/summit/channels",
            json!({"id": "de", "lang": "de", "source": "nowhere"}),
        )
        .await,
        422,
        "unknown_source",
    );
    refused(
        &post(
            "/v1/admin/events/summit/channels",
            json!({"id": "x/y", "lang": "de"}),
        )
        .await,
        400,
        "bad_id",
    );
    refused(
        &post(
            "/v1/admin/events/summit/channels",
            json!({"id": "de", "lang": "klingon"}),
        )
        .await,
        400,
        "bad_field",
    );
    refused(
        &post("/v1/admin/events/summit/channels", json!({"id": "de"})).await,
        400,
        "bad_field",
    );
    refused(
        &admin
            .call("POST", "/v1/admin/events/summit/channels", None)
            .await,
        400,
        "bad_json",
    );
    refused(
        &post(
            "/v1/admin/events/nowhere/channels",
            json!({"id": "de", "lang": "de"}),
        )
        .await,
        404,
        "unknown_event",
    );
    // The config file's event is read-only here.
    refused(
        &post(
            "/v1/admin/events/conf/channels",
            json!({"id": "de", "lang": "de"}),
        )
        .await,
        403,
        "read_only",
    );
    refused(
        &admin
            .call(
                "PATCH",
                "/v1/admin/events/conf",
                Some(json!({"title": "x"})),
            )
            .await,
        403,
        "read_only",
    );
    refused(
        &admin.delete("/v1/admin/events/conf").await,
        403,
        "read_only",
    );
    refused(
        &admin
            .call(
                "PATCH",
                "/v1/admin/events/summit",
                Some(json!({"starts_at": 2000, "ends_at": 1000})),
            )
            .await,
        400,
        "bad_field",
    );
    refused(
        &post("/v1/admin/events/summit/archive", json!({})).await,
        409,
        "bad_state",
    );
    // Nothing of any of them reached the store or the registry.
    assert_eq!(stored_rows(&s, "summit"), before);
    assert_eq!(admin.get("/v1/admin/events/summit").await.1, shown);
    for id in ["loop", "twice"] {
        assert_eq!(stored_rows(&s, id), (0, vec![]));
        refused(
            &admin.get(&format!("/v1/admin/events/{id}")).await,
            404,
            "unknown_event",
        );
    }
    // Without the admin token, or from another site's page: nothing.
    let stranger = Admin::with_token(&s.http(""), "not-the-token");
    refused(
        &stranger.post("/v1/admin/events", json!({"id": "x"})).await,
        401,
        "unauthorized",
    );
    let res = reqwest::Client::new()
        .post(s.http("/v1/admin/events"))
        .bearer_auth(ADMIN_TOKEN)
        .header("origin", "https://evil.example")
        .body(json!({"id": "x"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(stored_rows(&s, "x"), (0, vec![]));
}

#[tokio::test]
async fn deleting_a_channel_people_listen_to() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    admin
        .create_event(
            "summit",
            &[("floor", "auto", None), ("en", "en", Some("floor"))],
        )
        .await;
    let mut en = WsClient::connect(&s.ws("/v1/events/summit/channels/en/listen"), None).await;
    // Wait until the listener is counted.
    poll_until("the listener counted", || {
        let ch = s.server().hub().channel("summit", "en").unwrap();
        async move { (ch.listeners() == 1).then_some(()) }
    })
    .await;
    let busy = admin.delete("/v1/admin/events/summit/channels/en").await;
    refused(&busy, 409, "channel_busy");
    // The floor is en's source: it cannot go first.
    refused(
        &admin
            .delete("/v1/admin/events/summit/channels/floor?force=1")
            .await,
        409,
        "channel_busy",
    );
    let (status, v) = admin
        .delete("/v1/admin/events/summit/channels/en?force=1")
        .await;
    assert_eq!(status, 200, "{v}");
    let close = en.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4004);
    assert!(close.reason.contains("deleted"), "{}", close.reason);
    assert_eq!(
        refused_handshake(&s.ws("/v1/events/summit/channels/en/listen"), None).await,
        404
    );
    assert_eq!(stored_rows(&s, "summit").1, ["floor"]);
}

#[tokio::test]
async fn changing_a_channel_reconnects_its_pages() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    admin
        .create_event(
            "summit",
            &[
                ("floor", "auto", None),
                ("en", "en", Some("floor")),
                ("fr", "fr", Some("en")),
            ],
        )
        .await;
    let p = admin.issue("summit", "en", "Interpreter").await;
    let token = p["token"].as_str().unwrap().to_string();
    let mut publisher =
        WsClient::connect(&s.ws("/v1/events/summit/channels/en/publish"), Some(&token)).await;
    let kept = publisher.publish_final("Kept across the change.", Some("k1"));
    let kept = ack_seq(&kept.await);
    let mut en = WsClient::connect(&s.ws("/v1/events/summit/channels/en/listen"), None).await;
    // A cycle through the change is refused, and nothing changes.
    let cycle = admin
        .call(
            "PATCH",
            "/v1/admin/events/summit/channels/en",
            Some(json!({"source": "fr"})),
        )
        .await;
    refused(&cycle, 422, "source_cycle");
    refused(
        &admin
            .call(
                "PATCH",
                "/v1/admin/events/summit/channels/en",
                Some(json!({"lang": "xx-nope"})),
            )
            .await,
        400,
        "bad_field",
    );
    assert_eq!(stored_rows(&s, "summit").1, ["floor", "en", "fr"]);
    // A new label: the channel's sockets close with 4006 and come back to the new channel,
    // with its lines, seqs and credentials.
    let (status, v) = admin
        .call(
            "PATCH",
            "/v1/admin/events/summit/channels/en",
            Some(json!({"label": "English (UK)", "interpreted": false})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["channels"][1]["label"], "English (UK)");
    for c in [&mut en, &mut publisher] {
        let close = c.closed().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 4006);
    }
    let en = WsClient::connect(&s.ws("/v1/events/summit/channels/en/listen?since=0"), None).await;
    match en.hello_msg() {
        ServerMsg::Hello { label, seq, .. } => {
            assert_eq!(label, "English (UK)");
            assert_eq!(seq, kept);
        }
        other => panic!("expected a hello, got {other:?}"),
    }
    let mut publisher =
        WsClient::connect(&s.ws("/v1/events/summit/channels/en/publish"), Some(&token)).await;
    let again = publisher
        .publish_final("Kept across the change.", Some("k1"))
        .await;
    assert_eq!(
        again,
        ServerMsg::Ack {
            seq: kept,
            id: Some("k1".into()),
            duplicate: true
        }
    );
    assert_eq!(
        listed(&s, "summit").await.unwrap()["channels"][1]["interpreted"],
        false
    );
}

/// Lines keep coming while the organiser changes the channel: every line is stored once, in
/// seq order, none falls between the old channel and the new (refused ones are resent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_line_falls_between_a_channel_and_its_change() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    admin
        .create_event("summit", &[("floor", "auto", None)])
        .await;
    let c = admin.issue("summit", "floor", "Captioner").await;
    let token = c["token"].as_str().unwrap().to_string();
    let url = s.ws("/v1/events/summit/channels/floor/publish");
    let mut p = WsClient::connect(&url, Some(&token)).await;
    const LINES: usize = 60;
    for i in 0..LINES {
        let m = ClientMsg::Final {
            text: format!("Line {i}."),
            id: Some(format!("l{i}")),
        };
        // The socket closes (4006) once the change is made: what is not sent goes again.
        if p.ws.send(Message::Text(m.to_json().into())).await.is_err() {
            break;
        }
        if i == LINES / 2 {
            let (status, v) = admin
                .call(
                    "PATCH",
                    "/v1/admin/events/summit/channels/floor",
                    Some(json!({"label": "Hall"})),
                )
                .await;
            assert_eq!(status, 200, "{v}");
        }
    }
    // Acks until the channel changes under the publisher; what was not acked goes again.
    let mut acked = std::collections::HashSet::new();
    loop {
        match p.next_or_closed().await {
            Next::Frame(Received::Msg(ServerMsg::Ack { id, .. })) => {
                acked.insert(id.expect("an id").into_owned());
            }
            Next::Frame(Received::Msg(ServerMsg::Error { code, .. })) => {
                assert_eq!(code, ErrorCode::ChannelChanged);
            }
            Next::Frame(_) => {}
            Next::Closed(c) => {
                if let Some(c) = c {
                    assert_eq!(u16::from(c.code), 4006);
                }
                break;
            }
        }
    }
    let mut p = WsClient::connect(&url, Some(&token)).await;
    for i in 0..LINES {
        let id = format!("l{i}");
        if !acked.contains(&id) {
            let a = p.publish_final(&format!("Line {i}."), Some(&id)).await;
            assert!(matches!(a, ServerMsg::Ack { .. }), "{a:?}");
        }
    }
    let v: Value = reqwest::get(s.http("/v1/events/summit/channels/floor/transcript?format=json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lines: Vec<(u64, String)> = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["seq"].as_u64().unwrap(),
                l["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut texts: Vec<_> = lines.iter().map(|(_, t)| t.clone()).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), LINES, "every line once: {lines:?}");
    assert_eq!(lines.len(), LINES, "no line twice: {lines:?}");
    assert!(
        lines.windows(2).all(|w| w[0].0 < w[1].0),
        "in seq order: {lines:?}"
    );
}
