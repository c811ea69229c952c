//! Cluster mode, partitions: a node reaches NATS through a TCP proxy the test cuts, silently
//! (bytes stop, sockets stay open) or by reset. While cut, the node lets nobody be on air and
//! accepts no line it cannot order: its publisher is refused at once with
//! `cluster_unavailable`, its listeners' status says the feed is interrupted (and the line in
//! progress is cleared), its metric says it is not connected. The other node hands the air to a partner once the cut node's
//! presence expires. After healing exactly one console is on air, and both nodes hold the same
//! log, in which no line of the cut node's publisher follows the handover.
mod common;

use common::cluster::*;
use common::proxy::Proxy;
use common::*;
use serde_json::{json, Value};

/// Whether the connected gauge of `node` reads `v`.
async fn connected(n: &TestServer, node: &str, v: f64) -> Option<()> {
    let series = format!("babelcast_cluster_connected{{node=\"{node}\"}}");
    (metric(&n.http(""), &series).await == Some(v)).then_some(())
}

async fn partition(reset: bool) {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let proxy = Proxy::start(nats.addr()).await;
    let mut behind = nats.cluster("n1");
    behind.nats_url = proxy.url();
    let n1 = TestServer::start_with(move |c| c.cluster = Some(behind)).await;
    let n2 = node(&nats, "n2").await;
    let mut anna = n1.publish_as("en", "Anna").await;
    let anna_id = anna.hello["publisher_id"].as_u64().unwrap();
    booth_until(&mut anna, |b| b["on_air"]["id"] == anna_id).await;
    let mut listener = n1.listen("en", None).await;
    let mut ben = n2.publish_as("en", "Ben").await;
    let ben_id = ben.hello["publisher_id"].as_u64().unwrap();
    booth_until(&mut ben, |b| b["on_air"]["name"] == "Anna").await;
    assert_eq!(
        anna.final_line("Anna before the cut.", None).await["seq"],
        1
    );
    anna.send_json(json!({"type": "partial", "text": "Anna is typ"}))
        .await;
    within("the partial", async {
        while listener.recv().await["text"] != "Anna is typ" {}
    })
    .await;

    if reset {
        proxy.cut_by_reset();
    } else {
        proxy.cut_silently();
    }
    // The cut node knows: its listeners are told (and the line in progress, which will not be
    // completed here, is cleared), its gauge drops, nobody is on air there, and its publisher
    // is refused at once.
    within("the interruption", async {
        let (mut told, mut cleared) = (false, false);
        while !(told && cleared) {
            let v = listener.recv().await;
            told |= v["type"] == "status" && v["interrupted"] == true && v["on_air"] == false;
            cleared |= v == json!({"type": "partial", "text": ""});
        }
    })
    .await;
    poll_until("n1's connected gauge to drop", || connected(&n1, "n1", 0.0)).await;
    booth_until(&mut anna, |b| b["on_air"].is_null()).await;
    anna.send_json(json!({"type": "final", "text": "Anna during the cut.", "id": "cut-1"}))
        .await;
    let refused = anna.recv_event().await;
    assert_eq!(
        (refused["code"].as_str(), refused["id"].as_str()),
        (Some("cluster_unavailable"), Some("cut-1")),
        "{refused}"
    );
    anna.send_json(json!({"type": "partial", "text": "Anna typ"}))
        .await;
    assert_eq!(anna.recv_event().await["code"], "cluster_unavailable");
    assert_eq!(connected(&n2, "n2", 1.0).await, Some(()));

    // The other node: the cut node's presence expires, the channel goes off air, Ben takes it.
    booth_until(&mut ben, |b| b["on_air"].is_null()).await;
    ben.send_json(json!({"type": "take"})).await;
    booth_until(&mut ben, |b| b["on_air"]["id"] == ben_id).await;
    let during = ben.final_line("Ben during the cut.", None).await;
    assert_eq!(during["type"], "ack", "{during}");

    proxy.heal();
    status_until(&mut listener, |s| {
        s["interrupted"].is_null() && s["on_air"] == true
    })
    .await;
    poll_until("n1's connected gauge to rise", || connected(&n1, "n1", 1.0)).await;
    // Exactly one console on air: Ben's, as both consoles show.
    booth_until(&mut anna, |b| b["on_air"]["id"] == ben_id).await;
    anna.send_json(json!({"type": "final", "text": "Anna after the cut.", "id": "cut-1"}))
        .await;
    let refused = anna.recv_event().await;
    assert_eq!(refused["code"], "not_on_air", "{refused}");
    let after = ben.final_line("Ben after the cut.", None).await;
    assert_eq!(after["type"], "ack", "{after}");

    // Both nodes hold the same log: Anna, the handover, Ben; nothing of Anna's during the cut.
    let last = after["seq"].as_u64().unwrap() as usize;
    let mut l1 = n1.listen("en", Some(0)).await;
    let got = events(&mut l1, last).await;
    let texts: Vec<&str> = got.iter().filter_map(|e| e["text"].as_str()).collect();
    assert_eq!(
        texts,
        [
            "Anna before the cut.",
            "Ben during the cut.",
            "Ben after the cut."
        ],
        "{got:?}"
    );
    let handover: Vec<&Value> = got.iter().filter(|e| e["type"] == "handover").collect();
    assert_eq!(handover.len(), 1, "{got:?}");
    assert_eq!(
        (&handover[0]["from"], &handover[0]["to"]),
        (&json!("Anna"), &json!("Ben"))
    );
    let (t1, t2) = (
        transcript(&n1.http(""), "en").await,
        transcript(&n2.http(""), "en").await,
    );
    assert_eq!(t1, t2, "the two nodes' logs differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_silently_from_nats_lets_nobody_on_air_and_heals_to_one_console_on_air() {
    partition(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_from_nats_by_reset_lets_nobody_on_air_and_heals_to_one_console_on_air() {
    partition(true).await;
}
