//! Cluster mode, the log: three babelcast nodes on a real nats-server with JetStream. Lines
//! published on one node reach listeners on the others once and in order, concurrent
//! publishers on two nodes never share a seq, a node killed with SIGKILL resumes its listeners
//! without a gap, and a NATS restart loses nothing acked.
//!
//! Each test starts its own `nats-server -js` on a free loopback port. Without nats-server
//! the tests fail in CI (`CI` set) and are skipped with a message elsewhere.
mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use babelcast::protocol::{parse_server, ClientMsg, ErrorCode, ServerMsg};
use common::cluster::{bin_node, metric, node, publish_all, Nats};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_published_on_one_node_reach_every_node_once_in_order() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let (n1, n2, n3) = (
        node(&nats, "n1").await,
        node(&nats, "n2").await,
        node(&nats, "n3").await,
    );
    let mut listeners = vec![
        n1.listen("en", None).await,
        n2.listen("en", None).await,
        n2.listen("en", None).await,
        n3.listen("en", None).await,
    ];
    let mut p = n1.publish("en").await;
    let texts: Vec<String> = (1..=60)
        .map(|i| format!("Line {i}: 你好, «world»."))
        .collect();
    let seqs = publish_all(&mut p, &texts).await;
    assert_eq!(seqs, (1..=60).collect::<Vec<u64>>());
    for l in &mut listeners {
        let got = l.committed(60).await;
        for (i, v) in got.iter().enumerate() {
            assert_eq!(line_of(v), (i as u64 + 1, texts[i].as_str()));
        }
    }
    // Nothing twice: the next event every listener sees is the next line.
    assert_eq!(p.publish_final("The end.", None).await, acked(61));
    for l in &mut listeners {
        assert_eq!(line_of(&l.committed(1).await[0]).0, 61);
    }
    // An edit published on node 3 reaches node 2, and the transcript of node 2 has it all.
    let mut p3 = n3.publish("floor").await;
    assert_eq!(p3.publish_final("Floor line.", None).await, acked(1));
    let mut l2 = n2.listen("floor", Some(0)).await;
    assert_eq!(line_text(&l2.committed(1).await[0]), "Floor line.");
    p3.send(ClientMsg::Edit {
        of: 1,
        text: "Floor line, corrected.".into(),
    })
    .await;
    assert_eq!(p3.next_msg().await, acked(2));
    match &l2.committed(1).await[0] {
        ServerMsg::Edit { of, .. } => assert_eq!(*of, 1),
        other => panic!("expected an edit, got {other:?}"),
    }
    let body = reqwest::get(n2.http(&format!(
        "/v1/events/{EVENT}/channels/en/transcript?format=json"
    )))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(body.contains("Line 60: 你好, «world»."), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_on_two_nodes_never_share_a_seq() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let (n1, n2, n3) = (
        node(&nats, "n1").await,
        node(&nats, "n2").await,
        node(&nats, "n3").await,
    );
    let mut watcher = n2.listen("zh", None).await;
    // Two HTTP publishers (no booth: both may publish) race on the same channel.
    let post = |srv: &TestServer, who: &'static str| {
        let url = srv.http(&TestServer::channel_path("zh", "captions"));
        async move {
            let client = reqwest::Client::new();
            let mut seqs = Vec::new();
            for i in 0..40 {
                let r = client
                    .post(format!("{url}?id={who}-{i}"))
                    .bearer_auth(token("zh"))
                    .header("content-type", "text/plain")
                    .body(format!("{who} line {i}"))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.text().await.unwrap());
                let answer = parse_server(&r.text().await.unwrap()).expect("an ack");
                seqs.push((ack_seq(&answer), format!("{who} line {i}")));
            }
            seqs
        }
    };
    let (a, b) = tokio::join!(post(&n1, "one"), post(&n3, "three"));
    let mut by_seq: BTreeMap<u64, String> = BTreeMap::new();
    for (seq, text) in a.into_iter().chain(b) {
        assert!(
            by_seq.insert(seq, text).is_none(),
            "seq {seq} given out twice"
        );
    }
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (1..=80).collect::<Vec<u64>>()
    );
    // Every node shows the same log.
    for l in [
        &mut watcher,
        &mut n1.listen("zh", Some(0)).await,
        &mut n3.listen("zh", Some(0)).await,
    ] {
        for v in l.committed(80).await {
            let (seq, text) = line_of(&v);
            assert_eq!(Some(text), by_seq.get(&seq).map(String::as_str), "{v:?}");
        }
    }
    let metrics = reqwest::get(n1.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("babelcast_cluster_connected{node=\"n1\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_restarts_and_its_listeners_resume_without_gap() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let n1 = node(&nats, "n1").await;
    let dir2 = tempfile::tempdir().unwrap();
    let mut n2 = bin_node(&nats, "n2", dir2.path()).await;
    let mut listener = n2.listen("en", None).await;
    // Cara is on air on node 2's zh channel; Dan waits on node 1.
    let cara = n2.publish_as("zh", "Cara").await;
    let mut zh1 = n1.listen("zh", None).await;
    let on_air = tokio::time::timeout(RECV_TIMEOUT, async {
        loop {
            match zh1.recv_msg().await {
                ServerMsg::Status(st) if st.on_air => break,
                ServerMsg::Status(_) => {}
                other => panic!("expected a status, got {other:?}"),
            }
        }
    });
    if on_air.await.is_err() {
        panic!(
            "node 1 never saw Cara on air; node 2 log:\n{}",
            n2.stderr.lock().unwrap()
        );
    }
    let mut dan = n1.publish_as("zh", "Dan").await;
    dan.booth_until(|b| member_name(&b.on_air) == Some("Cara"))
        .await;

    let mut p = n1.publish("en").await;
    let first: Vec<String> = (1..=20).map(|i| format!("Before the crash {i}.")).collect();
    publish_all(&mut p, &first).await;
    let seen = listener.committed(20).await;
    let last_seen = line_of(seen.last().unwrap()).0;
    assert_eq!(last_seen, 20);

    n2.kill9().await;
    drop(cara);
    let during: Vec<String> = (1..=20)
        .map(|i| format!("While node 2 is down {i}."))
        .collect();
    assert_eq!(
        publish_all(&mut p, &during).await,
        (21..=40).collect::<Vec<u64>>()
    );

    // Node 2's publisher went off air with its node: Dan can speak once the presence expires.
    dan.booth_until(|b| b.on_air.is_none()).await;
    assert_eq!(dan.publish_final("Dan takes over.", None).await, acked(2));

    let n2 = bin_node(&nats, "n2", dir2.path()).await;
    let mut resumed = n2.listen("en", Some(last_seen)).await;
    let got = resumed.committed(20).await;
    for (i, v) in got.iter().enumerate() {
        assert_eq!(line_of(v), (21 + i as u64, during[i].as_str()));
    }
    // Live again, and a late joiner on the restarted node gets the complete history.
    assert_eq!(p.publish_final("After the restart.", None).await, acked(41));
    assert_eq!(line_of(&resumed.committed(1).await[0]).0, 41);
    let mut late = n2.listen("en", Some(0)).await;
    let all = late.committed(41).await;
    assert_eq!(
        all.iter().map(|v| line_of(v).0).collect::<Vec<_>>(),
        (1..=41).collect::<Vec<_>>()
    );
    let mut zh = n2.listen("zh", Some(0)).await;
    let zh_events = zh.committed(2).await;
    assert_eq!(line_text(&zh_events[1]), "Dan takes over.", "{zh_events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_mid_stream_loses_nothing_acked() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("babelcast=info,async_nats=info")
        .with_test_writer()
        .try_init();
    let Some(mut nats) = Nats::start().await else {
        return;
    };
    let n1 = node(&nats, "n1").await;
    let n2 = node(&nats, "n2").await;
    let mut p = n1.publish("en").await;
    const N: usize = 80;
    let text = |i: usize| format!("Line {i} through a NATS restart.");
    let mut acked: HashMap<usize, u64> = HashMap::new();
    let mut refused: Vec<usize> = Vec::new();
    // NATS goes down while lines are being published, for longer than an ack may take: the
    // node times out, publishes again (same message id) and the client library queues.
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        nats.stop();
        tokio::time::sleep(Duration::from_secs(4)).await;
        nats.spawn().await;
        nats
    });
    for i in 0..N {
        p.send(ClientMsg::Final {
            text: text(i),
            id: Some(format!("r{i}")),
        })
        .await;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let _nats = restart.await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.len() + refused.len() < N {
        let r = tokio::time::timeout_at(deadline, p.recv_frame())
            .await
            .expect("every final gets an ack or an error");
        let index = |id: &Option<std::borrow::Cow<str>>| {
            id.as_deref().map(|s| s[1..].parse::<usize>().unwrap())
        };
        match &r {
            Received::Msg(ServerMsg::Ack { id, seq, .. }) => {
                acked.insert(index(id).unwrap(), *seq);
            }
            Received::Msg(ServerMsg::Error { code, id, .. }) => {
                // Refused at once while the node knows it is cut off; or not confirmed in time.
                assert!(
                    matches!(
                        code,
                        ErrorCode::ClusterUnavailable | ErrorCode::StorageUnavailable
                    ),
                    "{r:?}"
                );
                refused.push(index(id).unwrap_or(usize::MAX));
            }
            _ => assert!(r.is_meta(), "{r:?}"),
        }
    }
    let metrics = reqwest::get(n1.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let retries = metrics
        .lines()
        .find(|l| l.starts_with("babelcast_cluster_publish_retries_total"))
        .unwrap_or_default()
        .to_string();
    eprintln!(
        "through the NATS restart: {} acked, {} refused; {retries}",
        acked.len(),
        refused.len()
    );
    // Publishers retry what was refused, with the same id, once the node is back in the
    // cluster: stored once.
    poll_until("node 1 back in the cluster", || async {
        let connected = metric(&n1.http(""), "babelcast_cluster_connected{node=\"n1\"}").await;
        (connected == Some(1.0)).then_some(())
    })
    .await;
    for &i in refused.iter().filter(|i| **i != usize::MAX) {
        let ack = p.publish_final(&text(i), Some(&format!("r{i}"))).await;
        acked.insert(i, ack_seq(&ack));
    }
    // Everything acked is on node 2, at its seq, once.
    let mut l = n2.listen("en", Some(0)).await;
    let last = acked.values().copied().max().unwrap();
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
    assert_eq!(by_seq.len(), last as usize, "seqs are contiguous");
    for (i, seq) in &acked {
        assert_eq!(
            by_seq.get(seq).copied(),
            Some(text(*i).as_str()),
            "acked line {i} (seq {seq}) lost"
        );
    }
    let mut texts: Vec<&str> = by_seq.values().copied().collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), by_seq.len(), "a line was stored twice");
}
