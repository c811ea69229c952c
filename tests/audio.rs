//! The interpreters' voices over real sockets: only listeners that asked get sound; the booth
//! rule (only the on-air partner is heard, a handover switches the voice, a standby partner is
//! never heard); feeds yield to the partner; bad packets get a specific error and break
//! nothing; a listener that stops reading skips to current sound (TLS: tests/audio_tls.rs).

mod common;
#[path = "common/sound.rs"]
mod sound;

use std::time::{Duration, Instant};

use babelcast::protocol::audio::FLAG_NEW_VOICE;
use common::*;
use serde_json::json;
use sound::*;
use tokio_tungstenite::tungstenite::Message;

/// Packet interval of the tests' senders (20 ms packets in real time).
const TICK: Duration = Duration::from_millis(20);

async fn listen_audio(s: &TestServer, channel: &str) -> WsClient {
    let url = s.ws(&format!(
        "{}?audio=1",
        TestServer::channel_path(channel, "listen")
    ));
    WsClient::connect(&url, None).await
}

async fn feed(s: &TestServer, channel: &str) -> WsClient {
    let url = s.ws(&TestServer::channel_path(channel, "audio/publish"));
    WsClient::connect(&url, Some(&token(channel))).await
}

/// Receives sound packets until `n` of them came, skipping text; their (tag, n) and headers.
async fn packets(
    l: &mut WsClient,
    n: usize,
) -> Vec<(babelcast::protocol::audio::AudioHeader, (u8, u32))> {
    let mut out = Vec::new();
    while out.len() < n {
        let (h, p) = l.recv_packet().await;
        out.push((h, packet_id(&p)));
    }
    out
}

#[tokio::test]
async fn sound_reaches_only_the_listeners_who_asked_for_it() {
    let s = TestServer::start().await;
    let mut asked = listen_audio(&s, "en").await;
    let mut captions_only = s.listen("en", None).await;
    let mut later = s.listen("en", None).await;
    later.send_json(json!({"type": "audio", "on": true})).await;
    let mut ana = s.publish_as("en", "Ana").await;
    // The listener that asked by message is in once a packet reaches it; sent until then.
    let mut n = 0;
    loop {
        ana.send_opus(&opus_packet(b'A', n)).await;
        n += 1;
        if let Some(Got::Packet(..)) = later.recv_any_within(TICK).await {
            break;
        }
        assert!(
            n < 500,
            "the listener that asked by message never got sound"
        );
    }
    let first_seen = packets(&mut asked, 1).await;
    let (h, (tag, k)) = first_seen[0];
    assert_eq!((tag, k), (b'A', 0));
    assert_eq!(
        h.flags & FLAG_NEW_VOICE,
        FLAG_NEW_VOICE,
        "the first packet starts a voice"
    );
    assert_eq!(h.samples, 960);
    assert!(
        (babelcast::clock::now_ms() - h.ts_ms).abs() < 10_000,
        "{h:?}"
    );
    for i in n..n + 10 {
        ana.send_opus(&opus_packet(b'A', i)).await;
    }
    // In order, consecutive numbers, exact bytes; a voice starts only once.
    let got = packets(&mut asked, (n + 9) as usize).await;
    for (i, (h, id)) in got.iter().enumerate() {
        assert_eq!(*id, (b'A', i as u32 + 1));
        assert_eq!(h.packet, first_seen[0].0.packet + i as u32 + 1);
        assert_eq!(h.voice, first_seen[0].0.voice);
        assert_eq!(h.flags, 0);
    }
    // The other one got every packet from its first one on.
    let mut expect = None;
    loop {
        let (_, (tag, k)) = packets(&mut later, 1).await[0];
        assert_eq!(tag, b'A');
        if let Some(e) = expect {
            assert_eq!(k, e);
        }
        expect = Some(k + 1);
        if k == n + 9 {
            break;
        }
    }
    // The caption-only listener got no sound: only text, the line among it. Its status says
    // the channel has a voice, then, once the voice is silent, that it has none.
    ana.final_line("Hello.", Some("l1")).await;
    let (mut line, mut saw_voice) = (false, false);
    let deadline = Instant::now() + RECV_TIMEOUT;
    loop {
        assert!(Instant::now() < deadline, "no status without a voice");
        let v = captions_only.recv_json_no_sound().await;
        match v["type"].as_str() {
            Some("line") => {
                assert_eq!(v["text"], "Hello.");
                line = true;
            }
            Some("status") if v["audio"] == true => saw_voice = true,
            Some("status") if saw_voice && line => {
                assert!(v.get("audio").is_none(), "absent when false: {v}");
                break;
            }
            _ => {}
        }
    }
    // Asking to stop stops the sound. The listener's session reads its messages in order:
    // once its feedback after "audio off" reaches the booth, "audio off" has been done.
    asked.send_json(json!({"type": "audio", "on": false})).await;
    asked
        .send_json(json!({"type": "feedback", "kind": "slower"}))
        .await;
    ana.booth_until(|b| b.feedback.slower == 1).await;
    ana.send_opus(&opus_packet(b'A', 999)).await;
    ana.final_line("Bye.", Some("l2")).await;
    loop {
        match asked.recv_any().await {
            Got::Json(v) if v["type"] == "line" && v["text"] == "Bye." => break,
            Got::Json(_) => {}
            Got::Packet(h, p) => assert_ne!(packet_id(&p).1, 999, "sound after stopping: {h:?}"),
        }
    }
}

#[tokio::test]
async fn a_standby_partner_is_never_heard_and_a_handover_switches_the_voice() {
    let s = TestServer::start().await;
    let mut l = listen_audio(&s, "zh").await;
    let mut ana = s.publish_as("zh", "Ana").await;
    let mut ben = s.publish_as("zh", "Ben").await;
    // Both microphones send; Ana is on air (first in), Ben on standby.
    for i in 0..20 {
        ana.send_opus(&opus_packet(b'A', i)).await;
        ben.send_opus(&opus_packet(b'B', i)).await;
    }
    let before = packets(&mut l, 20).await;
    assert!(
        before.iter().all(|(_, (tag, _))| *tag == b'A'),
        "{before:?}"
    );
    let voice_a = before[0].0.voice;
    ben.send_json(json!({"type": "handover_request"})).await;
    ana.recv_type("booth").await;
    loop {
        let b = ana.recv_type("booth").await;
        if b["request"]["name"] == "Ben" {
            break;
        }
    }
    ana.send_json(json!({"type": "handover_accept"})).await;
    loop {
        let b = ben.recv_type("booth").await;
        if b["on_air"]["name"] == "Ben" {
            break;
        }
    }
    // Both keep sending across the switch: from Ben's first packet on, only Ben is heard.
    for i in 20..60 {
        ana.send_opus(&opus_packet(b'A', i)).await;
        ben.send_opus(&opus_packet(b'B', i)).await;
    }
    let mut seen_b = false;
    let mut after = 0;
    while after < 40 {
        let (h, (tag, n)) = packets(&mut l, 1).await[0];
        if tag == b'B' {
            if !seen_b {
                assert_eq!(h.flags & FLAG_NEW_VOICE, FLAG_NEW_VOICE, "a new voice");
                assert_ne!(h.voice, voice_a);
                assert_eq!(n, 20, "Ben is heard from his first packet after the switch");
            }
            seen_b = true;
            after += 1;
        } else {
            assert!(!seen_b, "Ana heard after Ben: packet {n}");
            assert!(n < 20, "Ana heard after the handover: packet {n}");
        }
    }
    // The standby microphone shows in /metrics as held back, never as heard.
    let metrics = reqwest::get(s.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> u64 {
        let key = format!("{name}{{event=\"conf\",channel=\"zh\"}} ");
        let line = metrics.lines().find(|l| l.starts_with(&key)).expect(name);
        line[key.len()..].parse().unwrap()
    };
    assert!(value("babelcast_audio_held_back_total") >= 20);
    assert!(value("babelcast_audio_packets_total") >= 60);
    assert!(value("babelcast_audio_frames_out_total") >= 60);
}

#[tokio::test]
async fn a_feed_is_heard_while_no_partner_speaks() {
    let s = TestServer::start().await;
    let mut l = listen_audio(&s, "floor").await;
    let mut mixer = feed(&s, "floor").await;
    assert_eq!(mixer.hello["role"], "feed");
    let mut other = feed(&s, "floor").await;
    for i in 0..10 {
        mixer.send_opus(&opus_packet(b'M', i)).await;
        other.send_opus(&opus_packet(b'O', i)).await;
    }
    let got = packets(&mut l, 10).await;
    assert!(
        got.iter().all(|(_, (t, _))| *t == b'M'),
        "one feed at a time: {got:?}"
    );
    // A captioner on air with a microphone: the partner is heard, not the feed.
    let mut cap = s.publish_as("floor", "Caro").await;
    for i in 10..30 {
        cap.send_opus(&opus_packet(b'C', i)).await;
        mixer.send_opus(&opus_packet(b'M', i)).await;
    }
    let mut heard_c = 0;
    while heard_c < 20 {
        let (_, (t, n)) = packets(&mut l, 1).await[0];
        if t == b'C' {
            heard_c += 1;
        } else {
            assert!(
                heard_c == 0 && n < 10 + 20,
                "the feed heard over the partner: {n}"
            );
        }
    }
    // The partner falls silent: the feed is heard again, as a new voice.
    tokio::time::sleep(Duration::from_millis(700)).await;
    mixer.send_opus(&opus_packet(b'M', 100)).await;
    let (h, id) = packets(&mut l, 1).await[0];
    assert_eq!(id, (b'M', 100));
    assert_eq!(h.flags & FLAG_NEW_VOICE, FLAG_NEW_VOICE);
    // Text on a feed is refused by name, and the feed goes on.
    mixer.send_text(r#"{"type":"final","text":"x"}"#).await;
    let e = mixer.recv_type("error").await;
    assert_eq!(e["code"], "audio_only");
    mixer.send_opus(&opus_packet(b'M', 101)).await;
    assert_eq!(packets(&mut l, 1).await[0].1, (b'M', 101));
    // A feed needs the channel's publish token.
    let url = s.ws(&TestServer::channel_path("floor", "audio/publish"));
    assert_eq!(refused_handshake(&url, Some("wrong")).await, 401);
}

#[tokio::test]
async fn bad_packets_get_a_specific_error_and_break_nothing() {
    let s = TestServer::start_with(|c| c.audio.max_packet_bytes = 200).await;
    let mut l = listen_audio(&s, "en").await;
    let mut ana = s.publish_as("en", "Ana").await;
    for (frame, why) in [
        (vec![2u8, 0xf8, 1], "a kind other than 1"),
        (vec![1u8], "no packet"),
        (vec![1u8, 0xf9, 1, 2, 3], "code 1 with an odd length"),
        (vec![1u8, 0xfb, 0], "code 3 with no frame"),
        (
            [vec![1u8], opus_packet(b'A', 0), vec![0; 200]].concat(),
            "over max_packet_bytes",
        ),
    ] {
        ana.send_message(Message::Binary(frame.into())).await;
        let e = ana.recv_type("error").await;
        assert_eq!(e["code"], "bad_audio", "{why}: {e}");
        assert!(e["message"].as_str().unwrap().len() > 10, "{e}");
    }
    // The connection, the channel and the transcript are intact.
    let ack = ana.final_line("Still here.", Some("x1")).await;
    assert_eq!(ack["type"], "ack");
    ana.send_opus(&opus_packet(b'A', 7)).await;
    assert_eq!(
        packets(&mut l, 1).await[0].1,
        (b'A', 7),
        "only good packets reach listeners"
    );
    // A listener sending binary is refused as before; a flood of packets is rate-limited once.
    l.send_message(Message::Binary(vec![1u8, 0xf8].into()))
        .await;
    let mut rate_errors = 0;
    for i in 0..400 {
        ana.send_opus(&opus_packet(b'A', 100 + i)).await;
    }
    ana.send_json(json!({"type": "final", "text": "After the flood.", "id": "x2"}))
        .await;
    loop {
        let v = ana.recv().await;
        if v["type"] == "error" {
            assert_eq!(v["code"], "rate_limited", "{v}");
            rate_errors += 1;
        }
        if v["type"] == "ack" {
            break;
        }
    }
    assert!(
        rate_errors >= 1,
        "a flood over audio.packet_rate is refused"
    );
    assert!(
        rate_errors <= 3,
        "refused once per burst, not per packet: {rate_errors}"
    );
}

#[tokio::test]
async fn a_listener_that_stops_reading_skips_to_current_sound() {
    let s = TestServer::start().await;
    let url = s.ws(&format!(
        "{}?audio=1",
        TestServer::channel_path("en", "listen")
    ));
    let mut slow = WsClient::connect_small_rcvbuf(&url, s.addr).await;
    let mut fast = listen_audio(&s, "en").await;
    let mut ana = s.publish_as("en", "Ana").await;
    // Five seconds of 20 ms packets in real time; the slow listener reads nothing meanwhile.
    let mut tick = tokio::time::interval(TICK);
    let stall = Duration::from_secs(5);
    let started = Instant::now();
    let mut sent = 0u32;
    while started.elapsed() < stall {
        tick.tick().await;
        ana.send_opus(&opus_packet(b'A', sent)).await;
        sent += 1;
        // The other listener keeps up the whole time.
        packets(&mut fast, 1).await;
    }
    // Keep talking while the slow listener reads again: it catches up with current packets.
    let resumed = sent;
    let mut got = Vec::new();
    loop {
        tick.tick().await;
        ana.send_opus(&opus_packet(b'A', sent)).await;
        sent += 1;
        packets(&mut fast, 1).await;
        while let Some(Got::Packet(_, p)) = slow.recv_any_within(Duration::from_millis(1)).await {
            got.push(packet_id(&p).1);
        }
        if got.last().is_some_and(|&n| n + 2 >= sent) {
            break;
        }
        assert!(
            sent - resumed < 500,
            "the slow listener never caught up: {got:?}"
        );
    }
    // It skipped most of the stall instead of receiving it late.
    let of_stall = got.iter().filter(|&&n| n < resumed).count() as u32;
    assert!(
        of_stall < resumed / 2,
        "{of_stall} of the {resumed} packets sent during the stall arrived late"
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
}
