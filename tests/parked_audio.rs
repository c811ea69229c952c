//! Parked listeners (issue 16) beside sound (issue 17) and organisers' decisions (issue 15): a
//! listener that asked for sound parks like any caught-up listener and still hears every
//! packet, in order, with its captions; asking to stop while parked stops the sound and parks
//! it again; deleting the channel or archiving the event closes parked listeners with the
//! reason (4004, 4005), as it closes listeners whose session runs; a line after a packet its
//! full socket cut short arrives whole.

mod common;
#[path = "common/sound.rs"]
mod sound;

use std::time::Duration;

use common::admin::Admin;
use common::*;
use serde_json::json;
use sound::*;

/// Packet interval of the test's sender (20 ms packets in real time).
const TICK: Duration = Duration::from_millis(20);

/// How many of the channel's listeners are parked, and how many are written sound directly.
fn parked_and_sound(s: &TestServer, event: &str) -> (usize, usize) {
    let ch = s.server().hub().channel(event, "en").unwrap();
    (ch.fanout().direct_count(), ch.audio().direct_count())
}

async fn until(s: &TestServer, event: &str, want: (usize, usize)) {
    poll_until("listeners parked, with or without sound", || async {
        (parked_and_sound(s, event) == want).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_listener_hears_every_packet_and_can_stop_the_sound() {
    let s = TestServer::start().await;
    let url = s.ws(&format!(
        "{}?audio=1",
        TestServer::channel_path("en", "listen")
    ));
    let mut l = WsClient::connect(&url, None).await;
    let mut captions_only = s.listen("en", None).await;
    until(&s, EVENT, (2, 1)).await;
    let mut ana = s.publish_as("en", "Ana").await;
    // 50 packets in real time with a line in the middle: every packet in order, the line too.
    let mut tick = tokio::time::interval(TICK);
    for n in 0..50u32 {
        tick.tick().await;
        ana.send_opus(&opus_packet(b'A', n)).await;
        if n == 25 {
            ana.final_line("Halfway.", Some("l1")).await;
        }
    }
    let (mut next, mut line) = (0u32, false);
    while next < 50 || !line {
        match l.recv_any().await {
            Got::Packet(_, p) => {
                assert_eq!(packet_id(&p), (b'A', next), "every packet, in order");
                next += 1;
            }
            Got::Json(v) if v["type"] == "line" => {
                assert_eq!(v["text"], "Halfway.");
                line = true;
            }
            Got::Json(_) => {}
        }
    }
    assert_eq!(captions_only.recv_event().await["text"], "Halfway.");
    // Both are parked again once caught up; the sound listener is still a sound listener.
    until(&s, EVENT, (2, 1)).await;

    // Asking to stop reaches the server from a parked listener: no more sound, parked again.
    l.send_json(json!({"type": "audio", "on": false})).await;
    until(&s, EVENT, (2, 0)).await;
    ana.send_opus(&opus_packet(b'A', 999)).await;
    ana.final_line("Bye.", Some("l2")).await;
    loop {
        match l.recv_any().await {
            Got::Json(v) if v["type"] == "line" && v["text"] == "Bye." => break,
            Got::Json(_) => {}
            Got::Packet(_, p) => assert_ne!(packet_id(&p).1, 999, "sound after stopping"),
        }
    }
}

/// A parked listener and a parked sound listener of a channel the admin API made.
async fn parked_pair(s: &TestServer, admin: &Admin) -> (WsClient, WsClient) {
    admin
        .create_event("summit", &[("en", "en", None), ("fr", "fr", None)])
        .await;
    let path = "/v1/events/summit/channels/en/listen";
    let plain = WsClient::connect(&s.ws(path), None).await;
    let sound = WsClient::connect(&s.ws(&format!("{path}?audio=1")), None).await;
    until(s, "summit", (2, 1)).await;
    (plain, sound)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_channel_closes_its_parked_listeners_with_4004() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    let (mut plain, mut sound) = parked_pair(&s, &admin).await;
    let (status, v) = admin
        .delete("/v1/admin/events/summit/channels/en?force=1")
        .await;
    assert_eq!(status, 200, "{v}");
    for l in [&mut plain, &mut sound] {
        let close = l.closed().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 4004);
        assert!(close.reason.contains("deleted"), "{}", close.reason);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_an_event_closes_its_parked_listeners_with_4005() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    let (mut plain, mut sound) = parked_pair(&s, &admin).await;
    // Ended first: listeners stay (and stay parked) until the event is archived.
    let (status, v) = admin.post("/v1/admin/events/summit/end", json!({})).await;
    assert_eq!(status, 200, "{v}");
    until(&s, "summit", (2, 1)).await;
    let (status, v) = admin
        .post("/v1/admin/events/summit/archive", json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    for l in [&mut plain, &mut sound] {
        let close = l.closed().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 4005);
    }
}

/// A parked sound listener whose socket filled up: the sound fan-out cut a packet short and
/// keeps its rest. The sound fan-out writes to the socket too, so the caption fan-out never
/// writes a line to it without the socket's lock: the rest goes first and the line arrives
/// whole, round after round. (Allowed, the line lands inside the packet: the client's stream
/// breaks in round 1 or 2; checked.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_after_a_packet_cut_short_arrives_whole() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let s = TestServer::start_with(|c| c.audio.packet_rate = 1000.0).await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let tcp = sock.connect(s.addr).await.unwrap();
    let url = s.ws(&format!(
        "{}?audio=1",
        TestServer::channel_path("en", "listen")
    ));
    let (mut l, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .expect("websocket handshake");
    let mut ana = s.publish_as("en", "Ana").await;
    for round in 1..=4u32 {
        until(&s, EVENT, (1, 1)).await;
        // The listener reads nothing while sound fills its socket.
        for n in 0..200 {
            ana.send_opus(&padded_packet(round * 1000 + n)).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Then it reads all there is, the sound having stopped.
        while let Ok(got) = tokio::time::timeout(Duration::from_millis(300), l.next()).await {
            assert!(matches!(got, Some(Ok(_))), "round {round}: {got:?}");
        }
        let text = format!("After the sound, round {round}.");
        assert_eq!(ana.final_line(&text, None).await["type"], "ack");
        loop {
            match tokio::time::timeout(RECV_TIMEOUT, l.next())
                .await
                .expect("the line in time")
            {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).expect("whole JSON");
                    if v["type"] == "line" {
                        assert_eq!(v["text"], text.as_str());
                        break;
                    }
                }
                Some(Ok(Message::Binary(b))) => assert_eq!(b[0], 1, "round {round}: a packet"),
                Some(Ok(_)) => {}
                other => panic!("round {round}: the listener's stream broke: {other:?}"),
            }
        }
    }
}

/// A 3,717-byte Opus packet (code 3: one 100-byte frame and 3,600 bytes of padding), larger
/// than what a nearly full socket takes at once.
fn padded_packet(n: u32) -> Vec<u8> {
    let mut p = vec![0xfb, 0x41];
    p.extend_from_slice(&[255; 14]);
    p.push(44); // 14 × 254 + 44 = 3,600 bytes of padding
    let mut frame = vec![0x55; 100];
    frame[..4].copy_from_slice(&n.to_be_bytes());
    p.extend_from_slice(&frame);
    p.resize(p.len() + 3600, 0);
    p
}
