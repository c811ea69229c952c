//! Issue 15: organisers' changes have the lines' durability. After each kind of change
//! (event created, changed, started, ended, archived, deleted; channel added, edited, deleted;
//! credential issued, rotated, revoked; admin token issued) the server is killed with SIGKILL
//! (`kill -9`) and started again on the same store: the change is there.

mod common;

use common::admin::Admin;
use common::*;
use serde_json::{json, Value};

/// Kills the server, starts it again on the same store; the new server and its admin client.
async fn crash_and_restart(mut b: BinServer) -> (BinServer, Admin) {
    b.kill9().await;
    let b = BinServer::start(&b.dir.clone()).await;
    let admin = Admin::new(&b.http(""));
    (b, admin)
}

async fn event(admin: &Admin, id: &str) -> Value {
    let (status, v) = admin.get(&format!("/v1/admin/events/{id}")).await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn credential(admin: &Admin, id: &str) -> Value {
    let (_, list) = admin.get("/v1/admin/credentials").await;
    list["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_survives_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let b = BinServer::start(tmp.path()).await;
    let admin = Admin::new(&b.http(""));

    // An event with a channel.
    admin
        .create_event("summit", &[("floor", "auto", None)])
        .await;
    let (b, admin) = crash_and_restart(b).await;
    let ev = event(&admin, "summit").await;
    assert_eq!(ev["channels"][0]["id"], "floor");

    // A channel added.
    let (status, _) = admin
        .post(
            "/v1/admin/events/summit/channels",
            json!({"id": "en", "lang": "en", "label": "English", "source": "floor"}),
        )
        .await;
    assert_eq!(status, 201);
    let (b, admin) = crash_and_restart(b).await;
    let ev = event(&admin, "summit").await;
    assert_eq!(
        ev["channels"][1],
        json!({"id": "en", "lang": "en", "label": "English", "source": "floor", "interpreted": true, "takeover_after_secs": null})
    );

    // The channel edited.
    let (status, v) = admin
        .call(
            "PATCH",
            "/v1/admin/events/summit/channels/en",
            Some(json!({"label": "English (booth 2)", "takeover_after_secs": 5})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (b, admin) = crash_and_restart(b).await;
    let ev = event(&admin, "summit").await;
    assert_eq!(
        ev["channels"][1],
        json!({"id": "en", "lang": "en", "label": "English (booth 2)", "source": "floor", "interpreted": true, "takeover_after_secs": 5})
    );

    // The event changed (title, schedule, published transcript): it starts tomorrow.
    let starts = babelcast::clock::now_ms() + 86_400_000;
    let ends = starts + 86_400_000;
    let (status, _) = admin
        .call(
            "PATCH",
            "/v1/admin/events/summit",
            Some(json!({"title": "Summit, day 2", "starts_at": starts, "ends_at": ends, "transcript_public": true})),
        )
        .await;
    assert_eq!(status, 200);
    let (b, admin) = crash_and_restart(b).await;
    let ev = event(&admin, "summit").await;
    assert_eq!(
        (
            ev["title"].as_str(),
            ev["starts_at"].as_i64(),
            ev["ends_at"].as_i64(),
            ev["transcript_public"].as_bool(),
            ev["state"].as_str()
        ),
        (
            Some("Summit, day 2"),
            Some(starts),
            Some(ends),
            Some(true),
            Some("scheduled")
        )
    );

    // Started early by the organiser: live, though its start time is still ahead.
    let (status, v) = admin.post("/v1/admin/events/summit/start", json!({})).await;
    assert_eq!((status, v["state"].as_str()), (200, Some("live")), "{v}");
    let (b, admin) = crash_and_restart(b).await;
    assert_eq!(event(&admin, "summit").await["state"], "live");

    // A credential issued: its token still publishes.
    let c = admin.issue("summit", "en", "Interpreter").await;
    let token = c["token"].as_str().unwrap().to_string();
    let (b, admin) = crash_and_restart(b).await;
    let url = b.ws("/v1/events/summit/channels/en/publish");
    let mut p = WsClient::connect(&url, Some(&token)).await;
    assert_eq!(p.final_line("Still mine.", None).await["type"], "ack");
    drop(p);

    // Rotated: the new token publishes after the restart, the old one is refused.
    let (status, c) = admin
        .post(
            &format!("/v1/admin/credentials/{}/rotate", c["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let old = token;
    let token = c["token"].as_str().unwrap().to_string();
    let (b, admin) = crash_and_restart(b).await;
    let url = b.ws("/v1/events/summit/channels/en/publish");
    assert_eq!(refused_handshake(&url, Some(&old)).await, 401);
    let mut p = WsClient::connect(&url, Some(&token)).await;
    assert_eq!(p.final_line("Mine again.", None).await["type"], "ack");
    drop(p);

    // Revoked: refused after the restart.
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        admin.delete(&format!("/v1/admin/credentials/{id}")).await.0,
        200
    );
    let (b, admin) = crash_and_restart(b).await;
    assert_eq!(
        refused_handshake(&b.ws("/v1/events/summit/channels/en/publish"), Some(&token)).await,
        401
    );
    assert!(credential(&admin, id).await["revoked_ms"]
        .as_i64()
        .is_some());

    // A named admin token issued, then a channel deleted with it.
    let (_, maria) = admin
        .post("/v1/admin/tokens", json!({"name": "Maria"}))
        .await;
    let maria = Admin::with_token(&admin.base, maria["token"].as_str().unwrap());
    let (b, admin) = crash_and_restart(b).await;
    let maria = Admin::with_token(&admin.base, &maria.token);
    assert_eq!(
        maria.delete("/v1/admin/events/summit/channels/en").await.0,
        200
    );
    let (b, admin) = crash_and_restart(b).await;
    let ev = event(&admin, "summit").await;
    assert_eq!(ev["channels"].as_array().unwrap().len(), 1);

    // Ended, then archived.
    assert_eq!(
        admin.post("/v1/admin/events/summit/end", json!({})).await.0,
        200
    );
    let (b, admin) = crash_and_restart(b).await;
    assert_eq!(event(&admin, "summit").await["state"], "ended");
    assert_eq!(
        admin
            .post("/v1/admin/events/summit/archive", json!({}))
            .await
            .0,
        200
    );
    let (b, admin) = crash_and_restart(b).await;
    assert_eq!(event(&admin, "summit").await["state"], "archived");

    // Deleted.
    assert_eq!(admin.delete("/v1/admin/events/summit").await.0, 204);
    let (b, admin) = crash_and_restart(b).await;
    assert_eq!(admin.get("/v1/admin/events/summit").await.0, 404);

    // Every action is in the audit log, attributed.
    let (_, audit) = admin.get("/v1/admin/audit").await;
    let actions: Vec<String> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            format!(
                "{} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "config event.create",
            "config channel.create",
            "config channel.update",
            "config event.update",
            "config event.start",
            "config credential.issue",
            "config credential.rotate",
            "config credential.issue",
            "config credential.revoke",
            "config admin_token.issue",
            "Maria channel.delete",
            "config event.end",
            "config event.archive",
            "config event.delete",
        ]
    );
    drop(b);
}
