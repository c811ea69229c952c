//! Issue 15, item 6: organisers' changes reach every node of a cluster (a real nats-server):
//! a channel made on node A is in force on node B within 2 s (listed, listened to, its lines
//! relayed), a credential issued on A publishes on B, and revoked on A it closes its
//! publisher on B and is refused there, within 2 s.

mod common;

use std::time::{Duration, Instant};

use babelcast::protocol::ServerMsg;
use common::admin::Admin;
use common::nats::Nats;
use common::*;
use serde_json::{json, Value};

/// The issue's bound for a change to reach every node.
const CLUSTER_BOUND: Duration = Duration::from_secs(2);

async fn node(nats: &Nats, id: &str) -> TestServer {
    let cluster = nats.cluster(id);
    TestServer::start_with(move |c| c.cluster = Some(cluster)).await
}

/// Waits until `f` holds, failing after the issue's 2 s; how long it took.
async fn within_bound<F, Fut>(what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < CLUSTER_BOUND,
            "{what}: not in force within {CLUSTER_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn listed_channels(s: &TestServer, event: &str) -> Vec<String> {
    let v: Value = reqwest::get(s.http("/v1/events"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == event)
        .map(|e| {
            e["channels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_one_node_are_in_force_on_the_other() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let a = node(&nats, "a").await;
    let b = node(&nats, "b").await;
    let admin_a = Admin::new(&a.http(""));
    let admin_b = Admin::new(&b.http(""));

    // A channel made on A: on B within 2 s, and B's listeners get its lines.
    admin_a
        .create_event("summit", &[("floor", "auto", None)])
        .await;
    within_bound("the event on B", || async {
        listed_channels(&b, "summit").await == ["floor"]
    })
    .await;
    let mut on_b = WsClient::connect(&b.ws("/v1/events/summit/channels/floor/listen"), None).await;
    let (status, _) = admin_a
        .post(
            "/v1/admin/events/summit/channels",
            json!({"id": "es", "lang": "es", "source": "floor"}),
        )
        .await;
    assert_eq!(status, 201);
    within_bound("the new channel on B", || async {
        listed_channels(&b, "summit").await == ["floor", "es"]
    })
    .await;
    let c = admin_a.issue("summit", "floor", "Captioner").await;
    let token = c["token"].as_str().unwrap().to_string();
    let mut pub_a = WsClient::connect(
        &a.ws("/v1/events/summit/channels/floor/publish"),
        Some(&token),
    )
    .await;
    let ack = pub_a.publish_final("Issued on A.", Some("a1")).await;
    assert!(matches!(ack, ServerMsg::Ack { .. }), "{ack:?}");
    loop {
        if let ServerMsg::Line { text, .. } = on_b.recv_msg().await {
            assert_eq!(text, "Issued on A.");
            break;
        }
    }
    // The credential issued on A opens B too.
    let publish_b = b.ws("/v1/events/summit/channels/floor/publish");
    let mut pub_b = WsClient::connect(&publish_b, Some(&token)).await;

    // Revoked on A: its publishers on both nodes are closed, and B refuses it, within 2 s.
    let id = c["id"].as_str().unwrap();
    let revoked_at = Instant::now();
    assert_eq!(
        admin_a
            .delete(&format!("/v1/admin/credentials/{id}"))
            .await
            .0,
        200
    );
    let close = pub_b.closed().await.expect("a close frame on B");
    assert_eq!(u16::from(close.code), 4003);
    assert!(
        revoked_at.elapsed() < CLUSTER_BOUND,
        "closed on B after {:?}",
        revoked_at.elapsed()
    );
    assert_eq!(
        u16::from(pub_a.closed().await.expect("closed on A").code),
        4003
    );
    assert_eq!(refused_handshake(&publish_b, Some(&token)).await, 401);

    // The other way round, and the audit log of B holds A's actions.
    let (status, _) = admin_b
        .post(
            "/v1/admin/events/summit/channels",
            json!({"id": "de", "lang": "de", "source": "floor"}),
        )
        .await;
    assert_eq!(status, 201);
    within_bound("B's channel on A", || async {
        listed_channels(&a, "summit").await == ["floor", "es", "de"]
    })
    .await;
    let (_, audit) = admin_b.get("/v1/admin/audit").await;
    let revoke = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "credential.revoke")
        .expect("A's revocation in B's audit log")
        .clone();
    assert!(
        revoke["detail"].as_str().unwrap().contains("(on node a)"),
        "{revoke}"
    );
}
