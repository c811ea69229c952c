//! Sound across the nodes of a cluster, against a real nats-server: a partner on one node is
//! heard by listeners on another, in order; a standby partner on another node is heard
//! nowhere; a feed on one node is heard on the other.
//!
//! Runs a real `nats-server -js` (tests/common/nats.rs): without it the test fails in CI and is
//! skipped with a message elsewhere, like the other cluster tests.

mod common;
#[path = "common/sound.rs"]
mod sound;

use std::time::Duration;

use babelcast::protocol::ClientMsg;
use common::cluster::{node, Nats};
use common::*;
use sound::*;

async fn listen_audio(s: &TestServer, channel: &str) -> WsClient {
    let url = s.ws(&format!(
        "{}?audio=1",
        TestServer::channel_path(channel, "listen")
    ));
    WsClient::connect(&url, None).await
}

/// Reads booth frames (and statuses) until one shows Ana on air; anything else fails.
async fn ana_on_air(c: &mut WsClient) {
    loop {
        match c.recv_frame().await {
            Received::Booth(b) if member_name(&b.on_air) == Some("Ana") => break,
            r => assert!(r.is_meta(), "expected a booth frame, got {r:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sound_crosses_nodes_by_the_booth_rule() {
    let Some(n) = Nats::start().await else {
        return;
    };
    let a = node(&n, "a").await;
    let b = node(&n, "b").await;
    let mut on_b = listen_audio(&b, "en").await;
    let mut on_a = listen_audio(&a, "en").await;
    let mut ana = a.publish_as("en", "Ana").await;
    // Ana is on air cluster-wide before Ben joins on the other node.
    ana_on_air(&mut ana).await;
    let mut ben = b.publish_as("en", "Ben").await;
    ana_on_air(&mut ben).await;
    // Until Node b's listener hears Ana, keep talking (the subscription may still be settling).
    let mut i = 0;
    let first = loop {
        ana.send_opus(&opus_packet(b'A', i)).await;
        ben.send_opus(&opus_packet(b'B', i)).await;
        i += 1;
        if let Some(Got::Packet(_, p)) = on_b.recv_any_within(Duration::from_millis(20)).await {
            break packet_id(&p);
        }
        assert!(i < 500, "node b never heard node a's partner");
    };
    assert_eq!(first.0, b'A');
    for k in i..i + 30 {
        ana.send_opus(&opus_packet(b'A', k)).await;
        ben.send_opus(&opus_packet(b'B', k)).await;
    }
    // Node b hears Ana's packets in order, and never Ben on standby (on his own node either).
    let mut next = first.1 + 1;
    while next < i + 30 {
        let (_, p) = on_b.recv_packet().await;
        assert_eq!(packet_id(&p), (b'A', next));
        next += 1;
    }
    let mut heard_a = 0;
    while heard_a < 30 {
        let (_, p) = on_a.recv_packet().await;
        assert_eq!(packet_id(&p).0, b'A', "the standby partner was heard");
        heard_a += 1;
    }
    // Ana leaves; once node b knows the air is free, a feed there is heard on node a.
    ana.send(ClientMsg::Release).await;
    ben.booth_until(|b| b.on_air.is_none()).await;
    drop(ben);
    let url = b.ws(&TestServer::channel_path("en", "audio/publish"));
    let mut mixer = WsClient::connect(&url, Some(&token("en"))).await;
    let mut k = 0;
    loop {
        mixer.send_opus(&opus_packet(b'M', k)).await;
        k += 1;
        if let Some(Got::Packet(_, p)) = on_a.recv_any_within(Duration::from_millis(20)).await {
            if packet_id(&p).0 == b'M' {
                break;
            }
        }
        assert!(k < 500, "node a never heard node b's feed");
    }
}
