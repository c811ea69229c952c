//! Cluster mode, partitions: a node reaches NATS through a TCP proxy the test cuts, silently
//! (bytes stop, sockets stay open) or by reset. While cut, the node lets nobody be on air and
//! accepts no line it cannot order: its publisher is refused at once with
//! `cluster_unavailable`, its listeners' status says the feed is interrupted (and the line in
//! progress is cleared), its metric says it is not connected. The other node hands the air to a partner once the cut node's
//! presence expires. After healing exactly one console is on air, and both nodes hold the same
//! log, in which no line of the cut node's publisher follows the handover.
mod common;

use babelcast::protocol::{ClientMsg, ErrorCode, ServerMsg};
use common::cluster::{metric, node, transcript, within, Nats};
use common::proxy::Proxy;
use common::*;

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
    let anna_id = anna.publisher_id();
    anna.booth_until(|b| member_id(&b.on_air) == Some(anna_id))
        .await;
    let mut listener = n1.listen("en", None).await;
    let mut ben = n2.publish_as("en", "Ben").await;
    let ben_id = ben.publisher_id();
    ben.booth_until(|b| member_name(&b.on_air) == Some("Anna"))
        .await;
    assert_eq!(
        anna.publish_final("Anna before the cut.", None).await,
        acked(1)
    );
    anna.send_partial("Anna is typ").await;
    let typing = ServerMsg::Partial {
        text: "Anna is typ".into(),
    };
    within("the partial", async {
        while listener.recv_msg().await != typing {}
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
            let m = listener.recv_msg().await;
            told |= matches!(m, ServerMsg::Status(st) if st.interrupted && !st.on_air);
            cleared |= m == ServerMsg::Partial { text: "".into() };
        }
    })
    .await;
    poll_until("n1's connected gauge to drop", || connected(&n1, "n1", 0.0)).await;
    anna.booth_until(|b| b.on_air.is_none()).await;
    anna.send(ClientMsg::Final {
        text: "Anna during the cut.".into(),
        id: Some("cut-1".into()),
    })
    .await;
    let refused = anna.expect_error(ErrorCode::ClusterUnavailable).await;
    assert_eq!(refused.id.as_deref(), Some("cut-1"), "{refused:?}");
    anna.send_partial("Anna typ").await;
    anna.expect_error(ErrorCode::ClusterUnavailable).await;
    assert_eq!(connected(&n2, "n2", 1.0).await, Some(()));

    // The other node: the cut node's presence expires, the channel goes off air, Ben takes it.
    ben.booth_until(|b| b.on_air.is_none()).await;
    ben.send(ClientMsg::Take).await;
    ben.booth_until(|b| member_id(&b.on_air) == Some(ben_id))
        .await;
    let during = ben.publish_final("Ben during the cut.", None).await;
    assert!(matches!(during, ServerMsg::Ack { .. }), "{during:?}");

    proxy.heal();
    listener.status_until(|s| !s.interrupted && s.on_air).await;
    poll_until("n1's connected gauge to rise", || connected(&n1, "n1", 1.0)).await;
    // Exactly one console on air: Ben's, as both consoles show.
    anna.booth_until(|b| member_id(&b.on_air) == Some(ben_id))
        .await;
    anna.send(ClientMsg::Final {
        text: "Anna after the cut.".into(),
        id: Some("cut-1".into()),
    })
    .await;
    anna.expect_error(ErrorCode::NotOnAir).await;
    let after = match ben.publish_final("Ben after the cut.", None).await {
        ServerMsg::Ack { seq, .. } => seq,
        other => panic!("expected an ack, got {other:?}"),
    };

    // Both nodes hold the same log: Anna, the handover, Ben; nothing of Anna's during the cut.
    let last = after as usize;
    let mut l1 = n1.listen("en", Some(0)).await;
    let got = l1.committed(last).await;
    let texts: Vec<&str> = got
        .iter()
        .filter_map(|e| match e {
            ServerMsg::Line { text, .. } | ServerMsg::Edit { text, .. } => Some(&**text),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        [
            "Anna before the cut.",
            "Ben during the cut.",
            "Ben after the cut."
        ],
        "{got:?}"
    );
    let handover: Vec<_> = got
        .iter()
        .filter(|e| matches!(e, ServerMsg::Handover { .. }))
        .collect();
    assert_eq!(handover.len(), 1, "{got:?}");
    let (from, to, _) = handover_of(handover[0]);
    assert_eq!((from, to), (Some("Anna"), Some("Ben")));
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
