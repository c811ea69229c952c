//! Issue 15: people, not just tokens. A publish credential per person and channel names its
//! publisher (a booth partner cannot pose as another by `?name=`), is stored only as a
//! digest, is revoked at once (open sockets closed with 4003, the next attempt refused) and
//! rotated; named admin tokens attribute every action in the audit log.

mod common;

use babelcast::protocol::{ClientMsg, ErrorCode, ServerMsg};
use common::admin::{refused, Admin};
use common::*;
use serde_json::json;

fn publish_url(s: &TestServer, channel: &str, extra: &str) -> String {
    s.ws(&format!(
        "/v1/events/summit/channels/{channel}/publish{extra}"
    ))
}

/// The refusal of a publish handshake, as an HTTP answer (status, the error's code).
async fn publish_refusal(s: &TestServer, channel: &str, token: &str) -> (u16, Option<ErrorCode>) {
    let res = reqwest::Client::new()
        .get(s.http(&format!("/v1/events/summit/channels/{channel}/publish")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, refusal_code(&res.text().await.unwrap()))
}

#[tokio::test]
async fn a_credential_names_its_person_and_only_they_correct_their_lines() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    admin
        .create_event(
            "summit",
            &[("floor", "auto", None), ("en", "en", Some("floor"))],
        )
        .await;
    let ana = admin.issue("summit", "en", "Ana (booth 1)").await;
    let ben = admin.issue("summit", "en", "Ben (booth 1)").await;
    for c in [&ana, &ben] {
        let t = c["token"].as_str().unwrap();
        assert!(t.starts_with("bcp_") && t.len() >= 36, "{t}");
        assert!(c["publish_url"].as_str().unwrap().ends_with(t));
        assert!(c["booth_url"]
            .as_str()
            .unwrap()
            .contains(&format!("#token={t}")));
        assert!(
            c["qr_svg"].as_str().unwrap().starts_with("<svg")
                || c["qr_svg"].as_str().unwrap().starts_with("<?xml")
        );
    }
    // The same name twice on a channel is refused.
    let again = admin
        .post(
            "/v1/admin/events/summit/channels/en/credentials",
            json!({"name": "ana (BOOTH 1)"}),
        )
        .await;
    refused(&again, 409, "name_taken");

    // Ana is on air; her line is hers.
    let mut a = WsClient::connect(
        &publish_url(&s, "en", "?name=Mallory"),
        ana["token"].as_str(),
    )
    .await;
    let seq = match a.publish_final("Good morning.", Some("a1")).await {
        ServerMsg::Ack { seq, .. } => seq,
        other => panic!("expected an ack, got {other:?}"),
    };
    let author: String = s
        .db()
        .query_row(
            "SELECT author FROM events WHERE event = 'summit' AND channel = 'en' AND seq = ?1",
            [seq as i64],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        author, "Ana (booth 1)",
        "the name is the credential's, not ?name="
    );
    // Ben, on standby, asks for Ana's name: he stays Ben, and cannot correct her line.
    let mut b = WsClient::connect(
        &publish_url(&s, "en", "?name=Ana%20(booth%201)"),
        ben["token"].as_str(),
    )
    .await;
    b.send(ClientMsg::Edit {
        of: seq,
        text: "Good evening.".into(),
    })
    .await;
    b.expect_error(ErrorCode::NotOnAir).await;
    // The booth shows the credential's names.
    let booth = a.booth_until(|b| b.publishers.len() == 2).await;
    let names: Vec<_> = booth.publishers.iter().map(|p| &*p.name).collect();
    assert_eq!(names, ["Ana (booth 1)", "Ben (booth 1)"]);
    assert_eq!(member_name(&booth.on_air), Some("Ana (booth 1)"));

    // Only the digest is stored.
    let tokens: Vec<String> = [&ana, &ben]
        .iter()
        .map(|c| c["token"].as_str().unwrap().to_string())
        .collect();
    let dump: String = s
        .db()
        .prepare("SELECT quote(hash) || name FROM credentials")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in &tokens {
        assert!(!dump.contains(t.as_str()), "a token is stored in clear");
    }
    // Listed with their last use (never their token).
    let (_, list) = admin.get("/v1/admin/credentials?event=summit").await;
    let listed = list.to_string();
    for t in &tokens {
        assert!(!listed.contains(t.as_str()));
    }
    let first = &list["credentials"][0];
    assert_eq!(first["name"], "Ana (booth 1)");
    assert!(first["last_used_ms"].as_i64().is_some(), "{first}");
}

#[tokio::test]
async fn revoking_closes_the_socket_and_refuses_the_next_attempt() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    admin
        .create_event("summit", &[("floor", "auto", None)])
        .await;
    let c = admin.issue("summit", "floor", "Captioner").await;
    let token = c["token"].as_str().unwrap().to_string();
    let mut p = WsClient::connect(&publish_url(&s, "floor", ""), Some(&token)).await;
    let ack = p.publish_final("Before.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    let id = c["id"].as_str().unwrap();
    let (status, v) = admin.delete(&format!("/v1/admin/credentials/{id}")).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["revoked_ms"].as_i64().is_some(), "{v}");
    let close = p.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4003);
    assert!(close.reason.contains("revoked"), "{}", close.reason);
    assert_eq!(
        publish_refusal(&s, "floor", &token).await,
        (401, Some(ErrorCode::CredentialRevoked))
    );
    // Over HTTP too.
    let res = reqwest::Client::new()
        .post(s.http("/v1/events/summit/channels/floor/captions"))
        .bearer_auth(&token)
        .body("After.")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Revoking again changes nothing; an unknown id is 404.
    assert_eq!(
        admin.delete(&format!("/v1/admin/credentials/{id}")).await.0,
        200
    );
    refused(
        &admin.delete("/v1/admin/credentials/c_nothing").await,
        404,
        "unknown_credential",
    );
    // Rotating issues a new token to the same person; the old one stays refused.
    let (status, rotated) = admin
        .post(&format!("/v1/admin/credentials/{id}/rotate"), json!({}))
        .await;
    assert_eq!(status, 201, "{rotated}");
    assert_eq!(rotated["name"], "Captioner");
    let fresh = rotated["token"].as_str().unwrap();
    assert_ne!(fresh, token);
    let mut p = WsClient::connect(&publish_url(&s, "floor", ""), Some(fresh)).await;
    let ack = p.publish_final("After.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    assert_eq!(publish_refusal(&s, "floor", &token).await.0, 401);
    // A credential of one channel does not open another.
    admin
        .post(
            "/v1/admin/events/summit/channels",
            json!({"id": "en", "lang": "en", "source": "floor"}),
        )
        .await;
    assert_eq!(publish_refusal(&s, "en", fresh).await.0, 401);
}

#[tokio::test]
async fn named_admin_tokens_attribute_every_action() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    let (status, maria) = admin
        .post("/v1/admin/tokens", json!({"name": "Maria"}))
        .await;
    assert_eq!(status, 201, "{maria}");
    let maria_token = maria["token"].as_str().unwrap().to_string();
    assert!(maria_token.starts_with("bca_"));
    let as_maria = Admin::with_token(&s.http(""), &maria_token);
    as_maria
        .create_event("day1", &[("floor", "auto", None)])
        .await;
    let c = as_maria.issue("day1", "floor", "CART writer").await;
    // The dashboard's data opens with her token too.
    assert_eq!(as_maria.get("/v1/admin/channels").await.0, 200);
    let (_, list) = admin.get("/v1/admin/tokens").await;
    assert_eq!(list["credentials"][0]["name"], "Maria");
    // Revoked, her token opens nothing.
    let id = maria["id"].as_str().unwrap();
    assert_eq!(admin.delete(&format!("/v1/admin/tokens/{id}")).await.0, 200);
    refused(&as_maria.get("/v1/admin/events").await, 401, "unauthorized");
    let (_, audit) = admin.get("/v1/admin/audit").await;
    let entries = audit["entries"].as_array().unwrap();
    let got: Vec<_> = entries
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "config admin_token.revoke admin",
            "Maria credential.issue day1/floor",
            "Maria event.create day1",
            "config admin_token.issue admin",
        ]
    );
    // No secret in the log, as JSON or as CSV.
    let csv = reqwest::Client::new()
        .get(s.http("/v1/admin/audit?format=csv"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        csv.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with("id,time_utc,actor,action,target,detail\r\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 5, "{csv}");
    let everything = format!("{audit}{csv}");
    for secret in [&maria_token, c["token"].as_str().unwrap(), ADMIN_TOKEN] {
        assert!(!everything.contains(secret), "a secret in the audit log");
    }
}

#[tokio::test]
async fn a_shared_booth_token_cannot_take_a_persons_name() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    // Credentials work on the config file's channels too.
    let ana = admin.issue(EVENT, "en", "Ana").await;
    let url = |name: &str| {
        s.ws(&format!(
            "{}?name={name}",
            TestServer::channel_path("en", "publish")
        ))
    };
    assert_eq!(
        refused_handshake(&url("ana"), Some(&token("en"))).await,
        409
    );
    let res = reqwest::Client::new()
        .get(s.http(&format!(
            "{}?name=Ana",
            TestServer::channel_path("en", "publish")
        )))
        .bearer_auth(token("en"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body = res.text().await.unwrap();
    assert_eq!(refusal_code(&body), Some(ErrorCode::NameTaken), "{body}");
    // Another name is fine, and Ana herself gets in with her credential.
    let mut other = WsClient::connect(&url("Ben"), Some(&token("en"))).await;
    let hello = other.hello_msg();
    assert!(matches!(hello, ServerMsg::Hello { .. }), "{hello:?}");
    let mut a = WsClient::connect(&url("whoever"), ana["token"].as_str()).await;
    let booth = a.recv_booth().await;
    let names: Vec<_> = booth.publishers.iter().map(|p| &*p.name).collect();
    assert_eq!(names, ["Ben", "Ana"]);
    drop(other.ws.close(None).await);
}
