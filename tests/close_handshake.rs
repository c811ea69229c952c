//! The WebSocket closing handshake (RFC 6455 §5.5.1) on every endpoint: a client that sends
//! Close gets a Close echoing its code, then the server ends the TCP connection cleanly (FIN,
//! not a reset), so browsers report `wasClean` with the code instead of 1006. Listeners are
//! tried while the channel's direct fan-out writes to their socket, the path that used to drop
//! the connection without an answer.
mod common;
use babelcast::protocol::ServerMsg;
use common::raw;
use common::*;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Sends Close 1000 "bye", reads until the server's Close (skipping the frames it sent
/// before), checks the echo, then checks that the TCP connection ends with EOF and nothing
/// after the echo.
async fn close_cleanly(mut ws: WebSocketStream<TcpStream>, what: &str) {
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .unwrap_or_else(|e| panic!("{what}: sending Close: {e}"));
    let echo = tokio::time::timeout(RECV_TIMEOUT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("{what}: no Close echo, got {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: no Close echo within {RECV_TIMEOUT:?}"));
    let echo = echo.unwrap_or_else(|| panic!("{what}: the echo has no status code"));
    assert_eq!(echo.code, CloseCode::Normal, "{what}: {echo:?}");
    // Nothing after the echo, and a FIN rather than a reset.
    let tcp = ws.get_mut();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(RECV_TIMEOUT, tcp.read(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("{what}: the server kept the TCP connection open"));
    match read {
        Ok(0) => {}
        Ok(n) => panic!("{what}: {n} bytes after the Close echo: {:?}", &buf[..n]),
        Err(e) => panic!("{what}: the TCP connection ended with an error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_websocket_endpoint_answers_close_and_ends_tcp_cleanly() {
    let s = TestServer::start().await;
    // A line in the channel, so listeners get history before going direct.
    let mut p = s.publish("en").await;
    let ack = p.publish_final("Before anyone closes.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");

    // A listener written to by the direct fan-out.
    let ch = s.server().hub().channel(EVENT, "en").unwrap();
    assert_eq!(ch.fanout().direct_count(), 0);
    let listen = s.ws(&TestServer::channel_path("en", "listen"));
    let mut l = raw::ws(s.addr, &listen, &[]).await.expect("listen");
    // A live line reaches it; once it has, it is caught up and joins the fan-out.
    let ack = p.publish_final("Live line.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    tokio::time::timeout(RECV_TIMEOUT, async {
        while let Some(Ok(m)) = l.next().await {
            if m.to_text().unwrap_or("").contains("Live line.") {
                return;
            }
        }
        panic!("the listener's socket ended");
    })
    .await
    .expect("the live line");
    poll_until("the listener writes through the direct fan-out", || async {
        (ch.fanout().direct_count() == 1).then_some(())
    })
    .await;
    close_cleanly(l, "listen (direct)").await;
    // The channel goes on for the others.
    let ack = p.publish_final("After a listener left.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");

    // A listener that closes at once (still writing its own hello and history).
    let l = raw::ws(s.addr, &listen, &[]).await.expect("listen");
    close_cleanly(l, "listen (session)").await;

    // A booth monitor (a listener that is not counted).
    let monitor = format!(
        "{}?monitor=1&token={}",
        s.ws(&TestServer::channel_path("en", "listen")),
        token("en")
    );
    let m = raw::ws(s.addr, &monitor, &[]).await.expect("monitor");
    close_cleanly(m, "listen (monitor)").await;

    let publish = format!(
        "{}?token={}",
        s.ws(&TestServer::channel_path("zh", "publish")),
        token("zh")
    );
    let w = raw::ws(s.addr, &publish, &[]).await.expect("publish");
    close_cleanly(w, "publish").await;

    let ebutt = format!(
        "{}?token={}",
        s.ws(&TestServer::channel_path("fr", "ebu-tt/publish")),
        token("fr")
    );
    let w = raw::ws(s.addr, &ebutt, &[]).await.expect("ebu-tt publish");
    close_cleanly(w, "ebu-tt/publish").await;

    let toolkit = format!(
        "{}?event={EVENT}&channel=fr&token={}",
        s.ws("/demo-fr/publish"),
        token("fr")
    );
    let w = raw::ws(s.addr, &toolkit, &[])
        .await
        .expect("toolkit publish");
    close_cleanly(w, "/{sequence}/publish").await;

    // Everything stored is intact.
    let mut l = s.listen("en", Some(0)).await;
    for text in [
        "Before anyone closes.",
        "Live line.",
        "After a listener left.",
    ] {
        assert_eq!(l.next_line().await.1, text);
    }
}

/// A client frame (masked with a zero key, which leaves the payload as it is).
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![
        (u8::from(fin) << 7) | opcode,
        0x80 | payload.len() as u8,
        0,
        0,
        0,
        0,
    ];
    f.extend_from_slice(payload);
    f
}

/// Autobahn 9.5.1/9.6.3: a message far over the size limit sent in small chops. The server
/// closes with 1009 at the limit, and the rest of the message is still arriving: it must read
/// and drop it until the client's Close, so the connection ends with a FIN, not a reset (a
/// reset is what a socket closed with unread data sends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_limit_sent_in_chops_still_closes_cleanly() {
    let s = TestServer::start().await;
    let listen = s.ws(&TestServer::channel_path("en", "listen"));
    let publish = format!(
        "{}?token={}",
        s.ws(&TestServer::channel_path("zh", "publish")),
        token("zh")
    );
    for (what, url) in [("listen", listen), ("publish", publish)] {
        let mut ws = raw::ws(s.addr, &url, &[]).await.expect("connect");
        let tcp = ws.get_mut();
        // 1 MiB in 64-byte frames: a text frame, then continuations, the last one final.
        const CHOP: usize = 64;
        const CHOPS: usize = (1 << 20) / CHOP;
        let chop = [b'a'; CHOP];
        let mut all = Vec::with_capacity(CHOPS * (CHOP + 6));
        for i in 0..CHOPS {
            let opcode = if i == 0 { 0x1 } else { 0x0 };
            all.extend(client_frame(i == CHOPS - 1, opcode, &chop));
        }
        use tokio::io::AsyncWriteExt;
        tcp.write_all(&all)
            .await
            .unwrap_or_else(|e| panic!("{what}: the server stopped reading the message: {e}"));
        tcp.write_all(&client_frame(true, 0x8, &1009u16.to_be_bytes()))
            .await
            .unwrap_or_else(|e| panic!("{what}: sending Close: {e}"));
        // Everything the server sends up to its end: its 1009 Close, then EOF, not a reset.
        let mut got = Vec::new();
        let end = tokio::time::timeout(RECV_TIMEOUT, tcp.read_to_end(&mut got))
            .await
            .unwrap_or_else(|_| panic!("{what}: the server kept the connection open"));
        if let Err(e) = end {
            panic!("{what}: the connection ended with an error, not a FIN: {e}");
        }
        let close = [0x88, 0x00];
        let at = got
            .windows(2)
            .rposition(|w| w[0] == close[0])
            .unwrap_or_else(|| panic!("{what}: no Close frame from the server"));
        let code = u16::from_be_bytes([got[at + 2], got[at + 3]]);
        assert_eq!(code, 1009, "{what}: the server's Close code");
    }
    // The channel is intact.
    let mut p = s.publish("en").await;
    let ack = p.publish_final("Still here.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
}
