//! Bad input gets a clear answer: an `error` with a code and the connection kept (proved by a
//! successful final afterwards); an oversized frame closes with 1009; unknown event or channel
//! is a 404 and a missing or wrong token a 401, before the upgrade.
mod common;
use babelcast::protocol::{parse_server, ClientMsg, ErrorCode, ServerMsg};
use common::*;
use tokio_tungstenite::tungstenite::Message;

/// Expects an `error` with `code`, then proves the connection still publishes; returns the
/// error.
async fn refused_then_ok(p: &mut WsClient, code: ErrorCode, next_seq: u64) -> Refused {
    let e = p.expect_error(code).await;
    assert!(!e.message.is_empty(), "{e:?}");
    let ack = p
        .publish_final(&format!("Still connected after {}.", code.as_str()), None)
        .await;
    assert_eq!(ack, acked(next_seq), "after {code:?}");
    e
}

/// A correction of line `of`.
fn edit(of: u64, text: &str) -> ClientMsg {
    ClientMsg::Edit {
        of,
        text: text.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_message_gets_an_error_code_and_the_connection_stays() {
    let s = TestServer::start_with(|c| c.limits.max_caption_chars = 100).await;
    let mut l = s.listen("en", None).await;
    let mut p = s.publish("en").await;
    let mut seq = 1;

    p.send_text("{\"type\": \"final\", \"text\": ").await;
    refused_then_ok(&mut p, ErrorCode::BadJson, seq).await;
    seq += 1;

    // Valid JSON that is no message: sent as raw text, as no `ClientMsg` can carry it.
    p.send_text(r#"{"type":"shout","text":"Hello"}"#).await;
    refused_then_ok(&mut p, ErrorCode::BadMessage, seq).await;
    seq += 1;

    p.send_text(r#"{"type":"final"}"#).await;
    refused_then_ok(&mut p, ErrorCode::BadMessage, seq).await;
    seq += 1;

    p.send_final("").await;
    refused_then_ok(&mut p, ErrorCode::EmptyText, seq).await;
    seq += 1;

    p.send_final("  \n\t ").await;
    refused_then_ok(&mut p, ErrorCode::EmptyText, seq).await;
    seq += 1;

    // Over the limit in characters (101 Chinese characters are 303 bytes; 100 are fine).
    p.send_final(&"字".repeat(101)).await;
    refused_then_ok(&mut p, ErrorCode::TextTooLong, seq).await;
    seq += 1;
    p.send_final(&"字".repeat(100)).await;
    assert_eq!(p.next_msg().await, acked(seq));
    seq += 1;

    p.send_message(Message::Binary(vec![1u8, 2, 3].into()))
        .await;
    // A publisher's binary frame is sound (docs/protocol.md#sound): this one is no Opus packet.
    refused_then_ok(&mut p, ErrorCode::BadAudio, seq).await;
    seq += 1;

    p.send(edit(999, "No such line.")).await;
    let e = refused_then_ok(&mut p, ErrorCode::UnknownSeq, seq).await;
    assert_eq!(e.of, Some(999), "{e:?}");
    seq += 1;

    // An edit of an edit is not an edit of a line.
    p.send(edit(1, "Corrected.")).await;
    let edit_seq = p.expect_ack().await;
    assert_eq!(edit_seq, seq);
    seq += 1;
    p.send(edit(edit_seq, "Corrected twice.")).await;
    // Refused by the store, after admission: the error still names the edit.
    let e = refused_then_ok(&mut p, ErrorCode::UnknownSeq, seq).await;
    assert_eq!(e.of, Some(edit_seq), "{e:?}");
    seq += 1;

    // Listeners only ever saw what was accepted, in order.
    let mut n = 1;
    while n < seq {
        match l.next_msg().await {
            ServerMsg::Line { seq, .. } | ServerMsg::Edit { seq, .. } => assert_eq!(seq, n),
            other => panic!("expected a line or an edit, got {other:?}"),
        }
        n += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_edit_of_an_edit_is_refused_naming_it() {
    let s = TestServer::start().await;
    let captions = s.http(&TestServer::channel_path("zh", "captions"));
    let post = |body: ClientMsg| {
        reqwest::Client::new()
            .post(&captions)
            .bearer_auth(token("zh"))
            .json(&body)
            .send()
    };
    let answer = |body: String| parse_server(&body).expect("a server message");
    let r = post(ClientMsg::Final {
        text: "第一句。".into(),
        id: None,
    })
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = post(edit(1, "第一句话。")).await.unwrap();
    assert_eq!(answer(r.text().await.unwrap()), acked(2));
    let r = post(edit(2, "改了两次。")).await.unwrap();
    assert_eq!(r.status(), 400);
    match answer(r.text().await.unwrap()) {
        ServerMsg::Error { code, of, .. } => {
            assert_eq!((code, of), (ErrorCode::UnknownSeq, Some(2)))
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_maximum_closes_with_1009() {
    let s = TestServer::start_with(|c| c.limits.max_frame_bytes = 16 * 1024).await;
    let mut p = s.publish("en").await;
    let big = ClientMsg::Final {
        text: "x".repeat(20 * 1024),
        id: None,
    }
    .to_json();
    // The server may close before the whole frame is written; that is fine.
    let _ = futures_util::SinkExt::send(&mut p.ws, Message::Text(big.into())).await;
    let frame = loop {
        match p.next_or_closed().await {
            Next::Frame(f) => assert!(f.is_meta(), "expected close 1009, got {f:?}"),
            Next::Closed(frame) => break frame,
        }
    };
    let frame = frame.expect("no Close frame");
    assert_eq!(u16::from(frame.code), 1009, "{frame:?}");
    // Nothing was stored, and the server is fine.
    let mut p = s.publish("en").await;
    let ack = p.publish_final("Next.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
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
    l.send_final("I am not a publisher.").await;
    l.expect_error(ErrorCode::NotAllowed).await;
    l.send_message(Message::Binary(vec![0u8].into())).await;
    l.expect_error(ErrorCode::BinaryNotSupported).await;
    // Still connected: a line published now arrives.
    let mut p = s.publish("en").await;
    p.publish_final("Published by the booth.", None).await;
    assert_eq!(l.next_line().await.1, "Published by the booth.");
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
    match p.hello_msg() {
        ServerMsg::Hello { role, .. } => assert_eq!(role, "publish"),
        other => panic!("expected a hello, got {other:?}"),
    }
    assert_eq!(p.publish_final("Token in the query.", None).await, acked(1));
}
