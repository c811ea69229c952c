//! Cluster mode, the shared services: listener counts and audience feedback of every node on
//! every node, and the forwarding lease that makes exactly one node post each line to a
//! caption service.
mod common;

use std::time::Duration;

use babelcast::protocol::{ClientMsg, FeedbackKind};
use common::cluster::{node, publish_all, Nats};
use common::*;
use serde_json::Value;

/// Every node shows the channel's whole audience: listeners on the other nodes count in the
/// status frames and on the dashboard, their feedback reaches every booth, and they drop out
/// when they leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_counts_the_listeners_and_feedback_of_every_node() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let (n1, n2) = (node(&nats, "n1").await, node(&nats, "n2").await);
    let mut here = n1.listen("en", None).await;
    let there: Vec<WsClient> =
        futures_util::future::join_all((0..3).map(|_| n2.listen("en", None))).await;
    let audience = |s: &TestServer| {
        s.server()
            .hub()
            .channel(EVENT, "en")
            .unwrap()
            .status()
            .listeners
    };
    poll_until("n1 to count n2's listeners", || async {
        (audience(&n1) == 4).then_some(())
    })
    .await;
    poll_until("n2 to count n1's listener", || async {
        (audience(&n2) == 4).then_some(())
    })
    .await;
    // A listener sees the whole audience in its status frames.
    here.status_until(|s| s.listeners == 4).await;
    // The dashboard of n1 too.
    let admin = reqwest::Client::new()
        .get(n1.http("/v1/admin/channels"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let en = admin["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "en")
        .unwrap()
        .clone();
    assert_eq!(en["listeners"], 4, "{en}");
    // Feedback from a listener on n2 reaches n1's booth and dashboard.
    let mut there = there;
    there[0]
        .send(ClientMsg::Feedback {
            kind: FeedbackKind::Slower,
        })
        .await;
    let booth = |s: &TestServer| {
        s.server()
            .hub()
            .channel(EVENT, "en")
            .unwrap()
            .booth
            .feedback_counts()
    };
    poll_until("n1 to count n2's feedback", || async {
        (booth(&n1).slower == 1).then_some(())
    })
    .await;
    assert_eq!(booth(&n2).slower, 1, "counted once on its own node");
    drop(there);
    poll_until("n1 to see n2's listeners leave", || async {
        (audience(&n1) == 1).then_some(())
    })
    .await;
}

/// The forwarding lease: exactly one node posts each line to the caption service, and when
/// that node stops, the node that takes the lease over goes on from the last line the other
/// one posted (the position is kept in the cluster), even lines committed before it took over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarding_lease_moves_and_the_next_holder_goes_on_where_the_last_stopped() {
    use axum::extract::State;
    use babelcast::config::{ForwardConfig, ForwardKind};
    use std::sync::{Arc, Mutex};
    let Some(nats) = Nats::start().await else {
        return;
    };
    // A YouTube-shaped caption service that records every post's caption text.
    let posts: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/closedcaption",
            axum::routing::post(
                |State(p): State<Arc<Mutex<Vec<String>>>>, body: String| async move {
                    let text = body.lines().nth(1).unwrap_or("").to_string();
                    p.lock().unwrap().push(text);
                    "2026-11-27T00:00:00.000"
                },
            ),
        )
        .with_state(posts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/closedcaption?cid=lease-test",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let start = |id: &'static str| {
        let (cluster, url) = (nats.cluster(id), url.clone());
        TestServer::start_with(move |c| {
            c.cluster = Some(cluster);
            let en = c.events[0]
                .channels
                .iter_mut()
                .find(|ch| ch.id.get_ref() == "en")
                .unwrap();
            en.forward.push(ForwardConfig {
                kind: ForwardKind::Youtube,
                url,
                lang: None,
            });
        })
    };
    let mut nodes = [start("n1").await, start("n2").await];
    let posted = |n: usize| {
        let posts = posts.clone();
        async move {
            poll_until(&format!("{n} posts"), || {
                let posts = posts.clone();
                async move { (posts.lock().unwrap().len() >= n).then_some(()) }
            })
            .await
        }
    };

    let mut p = nodes[0].publish("en").await;
    publish_all(&mut p, &["One.".into(), "Two.".into(), "Three.".into()]).await;
    posted(3).await;
    drop(p);
    let holder = nodes
        .iter()
        .position(|n| {
            n.server().forwarders()[0]
                .stats
                .posts
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
        })
        .expect("one node forwards");
    let other = 1 - holder;
    // The holder stops; lines keep coming on the other node before it has taken the lease.
    nodes[holder].stop().await;
    let mut p = nodes[other].publish("en").await;
    publish_all(&mut p, &["Four.".into(), "Five.".into()]).await;
    posted(5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        *posts.lock().unwrap(),
        ["One.", "Two.", "Three.", "Four.", "Five."],
        "every line posted once, in order, across the lease change"
    );
}
