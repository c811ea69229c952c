//! Cluster mode, failures: a node killed with SIGKILL while its publisher is on air (the
//! publisher fails over to another node and gets the air back at once, long before the dead
//! node's presence expires); NATS stalled (SIGSTOP) while lines are published (every final is
//! answered within `publish_timeout_secs` of its arrival, nothing acked is lost or stored
//! twice); SIGTERM while NATS is stalled (the node exits within `shutdown_grace_secs`).
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use babelcast::protocol::{ClientMsg, ErrorCode, ServerMsg};
use common::cluster::{bin_node, cluster_toml, metric, node, Nats};
use common::*;

/// Presence TTL of the failover test: far beyond any wait of the test, so only the same
/// person resuming, never the dead node's expiry, can hand the air over.
const LONG_TTL: &str = "presence_ttl_secs = 120\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_failing_over_to_another_node_gets_the_air_back_at_once() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let mut c1 = nats.cluster("n1");
    c1.presence_ttl_secs = 120;
    let n1 = TestServer::start_with(move |c| c.cluster = Some(c1)).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = cluster_toml(&nats.url(), "n2", "").replace("presence_ttl_secs = 3\n", LONG_TTL);
    let mut n2 = BinServer::spawn(BinOptions::new(dir.path()).with_toml(&toml)).await;

    // Cara is on air on node 2; Dan waits on node 1.
    let mut cara = n2.publish_as("zh", "Cara").await;
    let cara_id = cara.publisher_id();
    cara.booth_until(|b| member_id(&b.on_air) == Some(cara_id))
        .await;
    let mut dan = n1.publish_as("zh", "Dan").await;
    dan.booth_until(|b| member_name(&b.on_air) == Some("Cara"))
        .await;
    let text = |i: usize| format!("Cara line {i}.");
    let mut acked: HashMap<usize, u64> = HashMap::new();
    for i in 0..10 {
        let ack = cara.publish_final(&text(i), Some(&format!("c{i}"))).await;
        acked.insert(i, ack_seq(&ack));
    }
    // Five more in flight when node 2 dies.
    for i in 10..15 {
        cara.send(ClientMsg::Final {
            text: text(i),
            id: Some(format!("c{i}")),
        })
        .await;
    }
    n2.kill9().await;
    drop(cara);

    // Cara's console reconnects to node 1 with the same token and name: on air at once.
    let mut cara = n1.publish_as("zh", "Cara").await;
    let resumed = cara.publisher_id();
    cara.booth_until(|b| member_id(&b.on_air) == Some(resumed))
        .await;
    dan.booth_until(|b| member_id(&b.on_air) == Some(resumed))
        .await;
    // It resends what was not acked, with the same ids: each stored once.
    for i in 10..15 {
        let ack = cara.publish_final(&text(i), Some(&format!("c{i}"))).await;
        acked.insert(i, ack_seq(&ack));
    }
    let ack = cara.publish_final(&text(15), Some("c15")).await;
    acked.insert(15, ack_seq(&ack));
    dan.send_final("Dan too early.").await;
    dan.expect_error(ErrorCode::NotOnAir).await;

    // The log: Cara's 16 lines, once each, in order, and no handover (the same person).
    let mut l = n1.listen("zh", Some(0)).await;
    let got = l.committed(16).await;
    for (i, e) in got.iter().enumerate() {
        let ServerMsg::Line { seq, text: t, .. } = e else {
            panic!("expected line {i}, got {e:?}: {got:?}");
        };
        assert_eq!(*t, text(i), "{got:?}");
        assert_eq!(Some(*seq), acked.get(&i).copied(), "{e:?}");
    }
    assert_eq!(l.hello_seq(), 16, "nothing else in the log");
}

/// The publish timeout of the stall test, and how much later than it an answer may come
/// (scheduling on a loaded test machine).
const STALL_TIMEOUT_SECS: u64 = 2;
const ANSWER_SLACK: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_nats_gets_every_final_an_answer_within_the_publish_timeout() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let mut cfg = nats.cluster("n1");
    cfg.publish_timeout_secs = STALL_TIMEOUT_SECS;
    let n1 = TestServer::start_with(move |c| c.cluster = Some(cfg)).await;
    let n2 = node(&nats, "n2").await;
    let p = n1.publish("en").await;
    let (mut tx, mut rx) = futures_util::StreamExt::split(p.ws);
    const N: usize = 120;
    let text = |i: usize| format!("Line {i} through a stall.");
    let sent: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let sender = {
        let sent = sent.clone();
        tokio::spawn(async move {
            use futures_util::SinkExt;
            for i in 0..N {
                let m = ClientMsg::Final {
                    text: text(i),
                    id: Some(format!("s{i}")),
                };
                sent.lock().unwrap().insert(i, Instant::now());
                tx.send(m.to_json().into()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tx
        })
    };
    // Every answer, with how long after its final it came (read as it arrives).
    let reader = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            let deadline = tokio::time::Instant::now() + RECV_TIMEOUT * 3;
            while answers.len() < N {
                let msg = tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut rx))
                    .await
                    .expect("every final is answered")
                    .unwrap()
                    .unwrap();
                let tokio_tungstenite::tungstenite::Message::Text(t) = msg else {
                    continue;
                };
                let r = Received::parse(&t);
                // The answers name their final by its id.
                let id = match &r {
                    Received::Msg(ServerMsg::Ack { id, .. } | ServerMsg::Error { id, .. }) => {
                        id.as_deref()
                    }
                    _ => None,
                };
                let Some(i) = id.map(|s| s[1..].parse::<usize>().unwrap()) else {
                    assert!(r.is_meta(), "{r:?}");
                    continue;
                };
                let waited = sent.lock().unwrap()[&i].elapsed();
                answers.push((i, waited, r));
            }
            (answers, rx)
        })
    };
    // NATS stalls for longer than the timeout, from the 1st to the 5th second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.pause();
    tokio::time::sleep(Duration::from_secs(4)).await;
    nats.resume();
    let (answers, rx) = reader.await.unwrap();
    let mut acked: HashMap<usize, u64> = HashMap::new();
    let mut refused = Vec::new();
    let mut slowest = Duration::ZERO;
    for (i, waited, r) in answers {
        slowest = slowest.max(waited);
        assert!(
            waited <= Duration::from_secs(STALL_TIMEOUT_SECS) + ANSWER_SLACK,
            "final {i} answered after {waited:?}: {r:?}"
        );
        match r {
            Received::Msg(ServerMsg::Ack { seq, .. }) => {
                acked.insert(i, seq);
            }
            Received::Msg(ServerMsg::Error { code, .. }) => {
                assert!(
                    matches!(
                        code,
                        ErrorCode::ClusterUnavailable | ErrorCode::StorageUnavailable
                    ),
                    "{code:?}"
                );
                refused.push(i);
            }
            other => panic!("{other:?}"),
        }
    }
    eprintln!(
        "through the stall: {} acked, {} refused, slowest answer {slowest:?}",
        acked.len(),
        refused.len()
    );
    assert!(
        !refused.is_empty(),
        "the stall refused nothing: was NATS stalled?"
    );
    let tx = sender.await.unwrap();
    let mut p = WsClient {
        ws: rx.reunite(tx).unwrap(),
        hello: serde_json::Value::Null,
    };
    // Resent with the same ids once the node is back: stored once (a refused line the stream
    // had stored after all is acked as a duplicate).
    poll_until("node 1 back in the cluster", || async {
        let v = metric(&n1.http(""), "babelcast_cluster_connected{node=\"n1\"}").await;
        (v == Some(1.0)).then_some(())
    })
    .await;
    for &i in &refused {
        let ack = p.publish_final(&text(i), Some(&format!("s{i}"))).await;
        acked.insert(i, ack_seq(&ack));
    }
    let last = acked.values().copied().max().unwrap();
    let mut l = n2.listen("en", Some(0)).await;
    let got = l.committed(last as usize).await;
    let by_seq: HashMap<u64, &str> = got
        .iter()
        .map(|m| match m {
            ServerMsg::Line { seq, text, .. } | ServerMsg::Edit { seq, text, .. } => {
                (*seq, &**text)
            }
            other => panic!("expected a line, got {other:?}"),
        })
        .collect();
    for (i, seq) in &acked {
        assert_eq!(
            by_seq.get(seq).copied(),
            Some(text(*i).as_str()),
            "acked line {i} lost"
        );
    }
    let mut texts: Vec<&str> = by_seq.values().copied().collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), by_seq.len(), "a line was stored twice");
    assert_eq!(texts.len(), N, "every line is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_node_within_the_grace_period_while_nats_is_stalled() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut n = bin_node(&nats, "n1", dir.path()).await;
    let mut listener = n.listen("en", None).await;
    let mut p = n.publish_as("en", "Anna").await;
    let ack = p.publish_final("Before the stall.", None).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    nats.pause();
    for i in 0..20 {
        p.send(ClientMsg::Final {
            text: format!("Stalled {i}."),
            id: Some(format!("t{i}")),
        })
        .await;
    }
    n.sigterm();
    // The test config's grace period is 5 s (the process's own start-up and exit aside).
    let status = n.exit_status(Duration::from_secs(5) + ANSWER_SLACK).await;
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        n.log()
    );
    nats.resume();
    for c in [&mut p, &mut listener] {
        while let Next::Frame(_) = c.next_or_closed().await {}
    }
}
