//! Bad input gets a clear answer: an `error` with a code and the connection kept (proved by a
//! successful final afterwards); an oversized frame closes with 1009; unknown event or channel
//! is a 404 and a missing or wrong token a 401, before the upgrade.
mod common;
use common::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Expects an `error` with `code`, then proves the connection still publishes; returns the
/// error.
async fn refused_then_ok(p: &mut WsClient, code: &str, next_seq: u64) -> serde_json::Value {
    let e = p.recv_event().await;
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["code"], code, "{e}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    let ack = p
        .final_line(&format!("Still connected after {code}."), None)
        .await;
    assert_eq!(ack["type"], "ack", "after {code}: {ack}");
    assert_eq!(ack["seq"], next_seq, "after {code}: {ack}");
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_message_gets_an_error_code_and_the_connection_stays() {
    let s = TestServer::start_with(|c| c.limits.max_caption_chars = 100).await;
    let mut l = s.listen("en", None).await;
    let mut p = s.publish("en").await;
    let mut seq = 1;

    p.send_text("{\"type\": \"final\", \"text\": ").await;
    refused_then_ok(&mut p, "bad_json", seq).await;
    seq += 1;

    p.send_json(json!({"type": "shout", "text": "Hello"})).await;
    refused_then_ok(&mut p, "bad_message", seq).await;
    seq += 1;

    p.send_json(json!({"type": "final"})).await;
    refused_then_ok(&mut p, "bad_message", seq).await;
    seq += 1;

    p.send_json(json!({"type": "final", "text": ""})).await;
    refused_then_ok(&mut p, "empty_text", seq).await;
    seq += 1;

    p.send_json(json!({"type": "final", "text": "  \n\t "}))
        .await;
    refused_then_ok(&mut p, "empty_text", seq).await;
    seq += 1;

    // Over the limit in characters (101 Chinese characters are 303 bytes; 100 are fine).
    p.send_json(json!({"type": "final", "text": "字".repeat(101)}))
        .await;
    refused_then_ok(&mut p, "text_too_long", seq).await;
    seq += 1;
    p.send_json(json!({"type": "final", "text": "字".repeat(100)}))
        .await;
    assert_eq!(p.recv_event().await["seq"], seq);
    seq += 1;

    p.send_message(Message::Binary(vec![1u8, 2, 3].into()))
        .await;
    // A publisher's binary frame is sound (docs/protocol.md#sound): this one is no Opus packet.
    refused_then_ok(&mut p, "bad_audio", seq).await;
    seq += 1;

    p.send_json(json!({"type": "edit", "of": 999, "text": "No such line."}))
        .await;
    let e = refused_then_ok(&mut p, "unknown_seq", seq).await;
    assert_eq!(e["of"], 999, "{e}");
    seq += 1;

    // An edit of an edit is not an edit of a line.
    p.send_json(json!({"type": "edit", "of": 1, "text": "Corrected."}))
        .await;
    let edit_seq = p.recv_event().await["seq"].as_u64().unwrap();
    assert_eq!(edit_seq, seq);
    seq += 1;
    p.send_json(json!({"type": "edit", "of": edit_seq, "text": "Corrected twice."}))
        .await;
    // Refused by the store, after admission: the error still names the edit.
    let e = refused_then_ok(&mut p, "unknown_seq", seq).await;
    assert_eq!(e["of"], edit_seq, "{e}");
    seq += 1;

    // Listeners only ever saw what was accepted, in order.
    let mut n = 1;
    while n < seq {
        let v = l.recv_event().await;
        assert!(v["type"] == "line" || v["type"] == "edit", "{v}");
        assert_eq!(v["seq"], n);
        n += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_edit_of_an_edit_is_refused_naming_it() {
    let s = TestServer::start().await;
    let captions = s.http(&TestServer::channel_path("zh", "captions"));
    let post = |body: serde_json::Value| {
        reqwest::Client::new()
            .post(&captions)
            .bearer_auth(token("zh"))
            .json(&body)
            .send()
    };
    let r = post(json!({"type": "final", "text": "第一句。"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = post(json!({"type": "edit", "of": 1, "text": "第一句话。"}))
        .await
        .unwrap();
    let edit: serde_json::Value = r.json().await.unwrap();
    assert_eq!(edit["seq"], 2, "{edit}");
    let r = post(json!({"type": "edit", "of": 2, "text": "改了两次。"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (e["code"].as_str(), e["of"].as_u64()),
        (Some("unknown_seq"), Some(2)),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_maximum_closes_with_1009() {
    let s = TestServer::start_with(|c| c.limits.max_frame_bytes = 16 * 1024).await;
    let mut p = s.publish("en").await;
    let big = json!({"type": "final", "text": "x".repeat(20 * 1024)}).to_string();
    // The server may close before the whole frame is written; that is fine.
    let _ = futures_util::SinkExt::send(&mut p.ws, Message::Text(big.into())).await;
    let frame = loop {
        match p.next_incoming().await {
            Incoming::Msg(v) => assert!(is_meta(&v), "expected close 1009, got {v}"),
            Incoming::Closed(frame) => break frame,
        }
    };
    let frame = frame.expect("no Close frame");
    assert_eq!(u16::from(frame.code), 1009, "{frame:?}");
    // Nothing was stored, and the server is fine.
    let mut p = s.publish("en").await;
    assert_eq!(p.final_line("Next.", None).await["type"], "ack");
    let lines: i64 = s
        .db()
        .query_row("SELECT COUNT(*) FROM events WHERE kind = 'line'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(lines, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_may_not_publish() {
    let s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    l.send_json(json!({"type": "final", "text": "I am not a publisher."}))
        .await;
    let e = l.recv_event().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("not_allowed")),
        "{e}"
    );
    l.send_message(Message::Binary(vec![0u8].into())).await;
    assert_eq!(l.recv_event().await["code"], "binary_not_supported");
    // Still connected: a line published now arrives.
    let mut p = s.publish("en").await;
    p.final_line("Published by the booth.", None).await;
    assert_eq!(l.recv_type("line").await["text"], "Published by the booth.");
    let store = s.db();
    let n: i64 = store
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_event_or_channel_is_404_and_bad_token_401_before_upgrade() {
    let s = TestServer::start().await;
    for path in [
        "/v1/events/nope/channels/en/listen",
        "/v1/events/conf/channels/nope/listen",
        "/v1/events/nope/channels/en/publish",
        "/v1/events/conf/channels/nope/publish",
    ] {
        assert_eq!(
            refused_handshake(&s.ws(path), Some(&token("en"))).await,
            404,
            "{path}"
        );
    }
    let listen = s.ws(&TestServer::channel_path("en", "listen"));
    assert_eq!(
        refused_handshake(&format!("{listen}?since=abc"), None).await,
        400
    );
    assert_eq!(
        refused_handshake(&format!("{listen}?since=-1"), None).await,
        400
    );
    let publish = s.ws(&TestServer::channel_path("en", "publish"));
    assert_eq!(refused_handshake(&publish, None).await, 401);
    assert_eq!(
        refused_handshake(&publish, Some("wrong-token-123")).await,
        401
    );
    // Another channel's token does not open this one.
    assert_eq!(refused_handshake(&publish, Some(&token("zh"))).await, 401);
    assert_eq!(
        refused_handshake(&format!("{publish}?token=wrong-token-123"), None).await,
        401
    );
    // The query token works (browsers cannot set headers).
    let mut p = WsClient::connect(&format!("{publish}?token={}", token("en")), None).await;
    assert_eq!(p.hello["role"], "publish");
    assert_eq!(p.final_line("Token in the query.", None).await["seq"], 1);
}
