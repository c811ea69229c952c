//! Who may do what: publish tokens per channel, the admin token, attendee access codes.
mod common;
use babelcast::protocol::ServerMsg;
use common::raw::{self, metric};
use common::*;

/// The access code of the protected test event.
const CODE: &str = "hall7-open-sesame";

async fn protected() -> TestServer {
    TestServer::start_with(|c| c.events[0].access_code = Some(CODE.into())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_code_guards_listening_and_transcripts() {
    let s = protected().await;
    let listen = s.ws(&TestServer::channel_path("en", "listen"));
    let (status, body) = raw::refusal(raw::ws(s.addr, &listen, &[]).await);
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("access_code_required"))
    );
    let (status, body) = raw::refusal(raw::ws(s.addr, &format!("{listen}?code=guess"), &[]).await);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("wrong_access_code"))
    );
    // The code as a query parameter (links, QR codes) or a header (pages).
    let mut l = WsClient::connect(&format!("{listen}?code={CODE}&since=0"), None).await;
    raw::ws(s.addr, &listen, &[("x-access-code", CODE)])
        .await
        .expect("code in a header");
    // Publishers need their token, not the code.
    let mut p = s.publish("en").await;
    assert_eq!(p.publish_final("Welcome.", None).await, acked(1));
    assert_eq!(l.next_line().await.1, "Welcome.");

    let transcript = TestServer::channel_path("en", "transcript");
    assert_eq!(raw::get(s.addr, &transcript).await.status, 401);
    assert_eq!(
        raw::get(s.addr, &format!("{transcript}?code=nope"))
            .await
            .status,
        403
    );
    let t = raw::get(s.addr, &format!("{transcript}?code={CODE}")).await;
    assert_eq!(t.status, 200);
    assert!(t.body.contains("Welcome."));
    // The organiser (admin token) and the channel's publishers may read it too.
    let r = reqwest::Client::new()
        .get(s.http(&transcript))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::get(s.http(&format!("{transcript}?token={}", token("en"))))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // ...but not another channel's publisher.
    let r = reqwest::get(s.http(&format!("{transcript}?token={}", token("fr"))))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let events: serde_json::Value = reqwest::get(s.http("/v1/events"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"][0]["needs_code"], true);
    assert!(metric(s.addr, "babelcast_refusals_total{reason=\"access_code\"}").await >= 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_event_needs_no_code() {
    let s = TestServer::start().await;
    let t = raw::get(s.addr, &TestServer::channel_path("en", "transcript")).await;
    assert_eq!(t.status, 200);
    let events: serde_json::Value = reqwest::get(s.http("/v1/events"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"][0]["needs_code"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_needs_this_channels_token() {
    let s = TestServer::start().await;
    let publish = s.ws(&TestServer::channel_path("en", "publish"));
    for (headers, query) in [
        (vec![], String::new()),
        (
            vec![("authorization", "Bearer wrong-token-1234")],
            String::new(),
        ),
        // Another channel's token does not open this one.
        (vec![], format!("?token={}", token("fr"))),
        (vec![("authorization", "Basic dXNlcjpwYXNz")], String::new()),
    ] {
        let (status, body) =
            raw::refusal(raw::ws(s.addr, &format!("{publish}{query}"), &headers).await);
        assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    }
    let r = reqwest::Client::new()
        .post(s.http(&TestServer::channel_path("en", "captions")))
        .bearer_auth(token("zh"))
        .body("Not mine to say.")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    // Nothing was stored by any of them.
    let l = s.listen("en", None).await;
    match l.hello_msg() {
        ServerMsg::Hello { seq, .. } => assert_eq!(seq, 0),
        other => panic!("expected a hello, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_the_admin_token() {
    let s = TestServer::start().await;
    let client = reqwest::Client::new();
    let url = s.http("/v1/admin/channels");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    for wrong in [token("en").as_str(), "admin-token-12", "admin-token-1234"] {
        let r = client.get(&url).bearer_auth(wrong).send().await.unwrap();
        assert_eq!(r.status(), 401, "{wrong}");
    }
    let r = client
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A booth console watches its channel as a monitor (`monitor=1` with the channel's publish
/// token or the admin token): it gets the captions but is not counted among the listeners.
/// Without such a token, asking to be a monitor is refused before the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_are_not_counted_and_need_a_token() {
    let s = TestServer::start().await;
    let path = TestServer::channel_path("en", "listen");
    let _listener = s.listen("en", None).await;
    let mut monitor = WsClient::connect(
        &s.ws(&format!("{path}?monitor=1&token={}", token("en"))),
        None,
    )
    .await;
    let _admin_monitor = WsClient::connect(
        &s.ws(&format!("{path}?monitor=1&token={ADMIN_TOKEN}")),
        None,
    )
    .await;
    let ch = s.server().hub().channel(EVENT, "en").unwrap();
    assert_eq!(ch.listeners(), 1, "monitors are not listeners");
    let mut p = s.publish("en").await;
    p.publish_final("Seen by the monitor.", None).await;
    loop {
        if let ServerMsg::Line { text, .. } = monitor.next_msg().await {
            assert_eq!(text, "Seen by the monitor.");
            break;
        }
    }
    for q in [
        "monitor=1",
        "monitor=1&token=not-a-token",
        &format!("monitor=1&token={}", token("zh")),
    ] {
        assert_eq!(
            refused_handshake(&s.ws(&format!("{path}?{q}")), None).await,
            403,
            "{q}"
        );
    }
    assert_eq!(ch.listeners(), 1);
}
