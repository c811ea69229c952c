//! Every limit of `[limits]` holds against a client that pushes past it, answers with its
//! documented error, shows in `/metrics`, and costs nothing already stored.
mod common;
use std::time::Duration;

use babelcast::protocol::{ClientMsg, ErrorCode, ServerMsg};
use common::raw::{self, metric};
use common::*;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

fn listen_url(s: &TestServer, channel: &str) -> String {
    s.ws(&TestServer::channel_path(channel, "listen"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_answers_503_until_a_slot_frees() {
    let s = TestServer::start_with(|c| c.limits.max_connections = 2).await;
    let a = s.listen("en", None).await;
    let _b = s.listen("en", None).await;
    let (status, body) = raw::refusal(raw::ws(s.addr, &listen_url(&s, "en"), &[]).await);
    assert_eq!(status, 503);
    assert_eq!(body["code"], "server_full");
    // Plain HTTP is refused the same way (the limit counts connections, not sockets' kinds).
    let r = raw::get(s.addr, "/v1/events").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["code"], "server_full");
    assert!(r.header("retry-after").is_some());
    let r = raw::http(
        s.addr,
        "POST /v1/events/conf/channels/en/captions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    )
    .await;
    assert_eq!(r.status, 503);
    // Monitoring does not go blind: health and metrics still answer (the operations reserve),
    // and the metrics say why.
    let r = raw::get(s.addr, "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert_eq!(metric(s.addr, "babelcast_http_connections").await, 2.0);
    assert_eq!(metric(s.addr, "babelcast_max_connections").await, 2.0);
    assert!(metric(s.addr, "babelcast_refusals_total{reason=\"node_full\"}").await >= 2.0);
    // A listener leaving frees its slot.
    drop(a);
    let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
    loop {
        let r = raw::get(s.addr, "/v1/events").await;
        if r.status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_share() {
    let s = TestServer::start_with(|c| {
        c.limits.per_ip_exempt_loopback = false;
        c.limits.per_ip_max_connections = 2;
        c.limits.per_ip_connect_rate = 0.0;
    })
    .await;
    let url = listen_url(&s, "en");
    let mut held = Vec::new();
    for _ in 0..2 {
        let stream = raw::connect_from("127.0.0.2", s.addr).await;
        held.push(
            raw::ws_on(stream, &url, &[])
                .await
                .expect("within the limit"),
        );
    }
    let stream = raw::connect_from("127.0.0.2", s.addr).await;
    let (status, body) = raw::refusal(raw::ws_on(stream, &url, &[]).await);
    assert_eq!(status, 429);
    assert_eq!(body["code"], "too_many_connections");
    // Another address is not affected.
    let stream = raw::connect_from("127.0.0.3", s.addr).await;
    raw::ws_on(stream, &url, &[]).await.expect("other address");
    let stream = raw::connect_from("127.0.0.4", s.addr).await;
    let m = raw::http_on(
        stream,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(m
        .body
        .contains("babelcast_refusals_total{reason=\"ip_connections\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_open_connections_too_fast() {
    let s = TestServer::start_with(|c| {
        c.limits.per_ip_exempt_loopback = false;
        c.limits.per_ip_connect_rate = 0.5;
        c.limits.per_ip_connect_burst = 3;
    })
    .await;
    let req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    for _ in 0..3 {
        let r = raw::http_on(raw::connect_from("127.0.0.5", s.addr).await, req).await;
        assert_eq!(r.status, 200);
    }
    let r = raw::http_on(raw::connect_from("127.0.0.5", s.addr).await, req).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["code"], "connecting_too_fast");
    let r = raw::http_on(raw::connect_from("127.0.0.6", s.addr).await, req).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_exempt_from_per_address_limits_by_default() {
    let s = TestServer::start_with(|c| {
        c.limits.per_ip_max_connections = 2;
        c.limits.per_ip_connect_burst = 2;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(s.listen("en", None).await);
    }
    assert_eq!(held.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_cut_off() {
    let s = TestServer::start_with(|c| c.limits.handshake_timeout_secs = 1).await;
    // Slowloris: half a request head, then nothing.
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let took = raw::wait_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
    // A connection that never says anything is closed too.
    let mut silent = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    raw::wait_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(metric(s.addr, "babelcast_refusals_total{reason=\"timeout\"}").await >= 1.0);
    // The server still answers.
    assert_eq!(raw::get(s.addr, "/healthz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_body_gets_408() {
    let s = TestServer::start_with(|c| c.limits.request_timeout_secs = 1).await;
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nConnection: close\r\n\r\nHello",
        TestServer::channel_path("en", "captions"),
        token("en")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let r = raw::http_on(stream, b"").await;
    assert_eq!(r.status, 408);
    assert_eq!(r.json()["code"], "request_timeout");
    // Nothing was stored.
    let mut l = s.listen("en", None).await;
    assert_eq!(l.hello_seq(), 0);
    l.ws.close(None).await.ok();
}

// On the runtime's paused clock: the seconds of pings and silence pass at once (nothing here
// waits for a thread outside the runtime, so auto-advance only skips idle time).
#[tokio::test(start_paused = true)]
async fn a_dead_client_is_reaped_and_a_live_one_is_not() {
    let s = TestServer::start_with(|c| c.limits.ping_interval_secs = 1).await;
    // `dead` is a bare socket after the handshake: it reads nothing and answers no ping.
    let mut dead = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        TestServer::channel_path("en", "listen")
    );
    dead.write_all(head.as_bytes()).await.unwrap();
    let mut alive = s.listen("en", None).await;
    // `alive` keeps reading (tungstenite answers the server's pings).
    let reader = tokio::spawn(async move {
        let until = tokio::time::Instant::now() + Duration::from_millis(4500);
        while let Ok(Some(msg)) = tokio::time::timeout_at(until, alive.ws.next()).await {
            if let Ok(Message::Close(c)) = msg {
                panic!("a live listener was closed: {c:?}");
            }
        }
        alive
    });
    let mut alive = reader.await.unwrap();
    // What the server sent `dead`: the handshake answer, hello, status, pings, then Close 4002.
    let mut bytes = Vec::new();
    tokio::time::timeout(RECV_TIMEOUT, dead.read_to_end(&mut bytes))
        .await
        .expect("the server ends the dead connection")
        .unwrap();
    let body = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(close_code(&bytes[body..]), Some(4002));
    alive.ws.close(None).await.ok();
    assert!(metric(s.addr, "babelcast_idle_closes_total").await >= 1.0);
}

/// The code of the first Close frame in a stream of (unmasked) server frames.
fn close_code(mut frames: &[u8]) -> Option<u16> {
    while frames.len() >= 2 {
        let opcode = frames[0] & 0x0f;
        let (len, at) = match frames[1] & 0x7f {
            126 => (u16::from_be_bytes([frames[2], frames[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(frames[2..10].try_into().ok()?) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let payload = frames.get(at..at + len)?;
        if opcode == 8 {
            return Some(u16::from_be_bytes([payload[0], payload[1]]));
        }
        frames = &frames[at + len..];
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_over_its_rate_is_refused_and_nothing_refused_is_stored() {
    let s = TestServer::start_with(|c| {
        c.limits.publisher_rate = 2.0;
        c.limits.publisher_burst = 5;
    })
    .await;
    let mut l = s.listen("en", None).await;
    let mut p = s.publish("en").await;
    for i in 0..20 {
        p.send(ClientMsg::Final {
            text: format!("Line number {i}."),
            id: Some(format!("r{i}")),
        })
        .await;
    }
    let (mut acks, mut limited) = (Vec::new(), Vec::new());
    while acks.len() + limited.len() < 20 {
        let m = p.next_msg().await;
        match &m {
            ServerMsg::Ack { id, .. } => acks.push(id.as_deref().expect("an id").to_string()),
            ServerMsg::Error {
                code, id, message, ..
            } => {
                assert_eq!(*code, ErrorCode::RateLimited, "{m:?}");
                // The refusal names the dropped final, in `id` and in the message.
                assert!(id.as_deref().is_some_and(|id| id.starts_with('r')), "{m:?}");
                limited.push(message.to_string());
            }
            _ => panic!("unexpected {m:?}"),
        }
    }
    assert!(acks.len() >= 5 && !limited.is_empty(), "{acks:?}");
    // The refusal names the final that was dropped.
    assert!(
        limited.iter().all(|m| m.contains("final \"r")),
        "{limited:?}"
    );
    // Exactly the acked lines reached the listener, in order, with no gap.
    for (i, id) in acks.iter().enumerate() {
        let (seq, text) = l.next_line().await;
        assert_eq!(seq, i as u64 + 1);
        assert_eq!(text, format!("Line number {}.", &id[1..]));
    }
    assert_eq!(
        metric(s.addr, "babelcast_refusals_total{reason=\"rate_limited\"}").await,
        limited.len() as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caption_length_is_counted_in_characters() {
    let s = TestServer::start_with(|c| c.limits.max_caption_chars = 10).await;
    let mut p = s.publish("zh").await;
    p.send_final("0123456789A").await;
    p.expect_error(ErrorCode::TextTooLong).await;
    // Ten characters of three bytes each fit.
    let v = p.publish_final("你好你好你好你好你好", None).await;
    assert!(matches!(v, ServerMsg::Ack { .. }), "{v:?}");
    let r = reqwest::Client::new()
        .post(s.http(&TestServer::channel_path("zh", "captions")))
        .bearer_auth(token("zh"))
        .body("01234567890")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body = r.text().await.unwrap();
    assert_eq!(refusal_code(&body), Some(ErrorCode::TextTooLong), "{body}");
    assert_eq!(
        metric(s.addr, "babelcast_refusals_total{reason=\"too_big\"}").await,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_closes_with_1009_and_the_channel_goes_on() {
    let s = TestServer::start_with(|c| c.limits.max_frame_bytes = 1024).await;
    let mut l = s.listen("en", None).await;
    let mut p = s.publish("en").await;
    assert_eq!(p.publish_final("Before.", None).await, acked(1));
    let big = ClientMsg::Final {
        text: "x".repeat(2000),
        id: None,
    }
    .to_json();
    p.send_text(&big).await;
    let close = p.closed().await.expect("close frame");
    assert_eq!(u16::from(close.code), 1009);
    // A listener's oversized frame is refused the same way. (Just over the limit, so the
    // server has read all of it: unread bytes would turn its close into a reset.)
    assert_eq!(l.next_line().await.0, 1);
    l.send_text(&"y".repeat(1100)).await;
    assert_eq!(u16::from(l.closed().await.expect("close").code), 1009);
    let mut p = s.publish("en").await;
    let ack = p.publish_final("After.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    // Counted when each session has ended, after its closing handshake.
    poll_until("both oversized frames counted", || async {
        (metric(s.addr, "babelcast_refusals_total{reason=\"too_big\"}").await >= 2.0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_on_join_is_bounded_and_resume_is_not() {
    let s = TestServer::start_with(|c| c.limits.history_on_join = 3).await;
    let mut p = s.publish("en").await;
    for i in 1..=6 {
        assert_eq!(p.publish_final(&format!("Line {i}."), None).await, acked(i));
    }
    let mut fresh = s.listen("en", None).await;
    for seq in 4..=6 {
        assert_eq!(fresh.next_line().await.0, seq);
    }
    // A resume gets everything it missed, however far back.
    let mut resumed = s.listen("en", Some(0)).await;
    for seq in 1..=6 {
        assert_eq!(resumed.next_line().await.0, seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bodies_and_heads_are_bounded() {
    let s = TestServer::start_with(|c| c.limits.max_body_bytes = 100).await;
    let url = s.http(&TestServer::channel_path("en", "captions"));
    let r = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token("en"))
        .body("z".repeat(101))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body = r.text().await.unwrap();
    assert_eq!(refusal_code(&body), Some(ErrorCode::BodyTooLarge), "{body}");
    // A huge declared length is refused from the header alone.
    let r = raw::http(
        s.addr,
        &format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1000000000\r\nConnection: close\r\n\r\n",
            TestServer::channel_path("en", "captions"),
            token("en")
        ),
    )
    .await;
    assert_eq!(r.status, 413);
    // A 100 KiB request head is refused before routing.
    let r = raw::http(
        s.addr,
        &format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\nConnection: close\r\n\r\n",
            "j".repeat(100 * 1024)
        ),
    )
    .await;
    assert_eq!(r.status, 431);
    // At the limit is fine.
    let r = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token("en"))
        .body("w".repeat(100))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(metric(s.addr, "babelcast_refusals_total{reason=\"too_big\"}").await >= 2.0);
}
