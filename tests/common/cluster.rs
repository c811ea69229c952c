//! Helpers of the cluster tests (`tests/cluster*.rs`): nodes in process and as processes on
//! a [`Nats`], a pipelined publisher, and what a node holds (transcript, metrics). Readers of
//! what sockets receive are `WsClient`'s typed ones (`common/expect.rs`).

use std::path::Path;
use std::time::Duration;

use babelcast::protocol::{ClientMsg, ServerMsg};
use serde_json::Value;

pub use super::nats::Nats;
use super::{BinOptions, BinServer, Received, TestServer, WsClient, EVENT, RECV_TIMEOUT};

/// How long [`within`] waits: as long as the typed readers that skip frames
/// ([`super::UNTIL`]).
const WAIT: Duration = super::UNTIL;

/// `f`, failing the test after [`WAIT`].
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT.max(RECV_TIMEOUT), f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// An in-process node on `nats`.
pub async fn node(nats: &Nats, id: &str) -> TestServer {
    let cluster = nats.cluster(id);
    TestServer::start_with(move |c| c.cluster = Some(cluster)).await
}

/// The `[cluster]` table of a process node on `url`, with `extra` keys.
pub fn cluster_toml(url: &str, id: &str, extra: &str) -> String {
    format!(
        "[cluster]\nnats_url = \"{url}\"\nnode_id = \"{id}\"\npresence_ttl_secs = 3\nstale_after_secs = 2\npublish_timeout_secs = 30\n{extra}"
    )
}

/// A node as a real process (so the test can SIGKILL it), on `dir`.
pub async fn bin_node(nats: &Nats, id: &str, dir: &Path) -> BinServer {
    BinServer::spawn(BinOptions::new(dir).with_toml(&cluster_toml(&nats.url(), id, ""))).await
}

/// Publishes `texts` pipelined (with ids) and returns their acks in order.
pub async fn publish_all(p: &mut WsClient, texts: &[String]) -> Vec<u64> {
    for (i, t) in texts.iter().enumerate() {
        p.send(ClientMsg::Final {
            text: t.clone(),
            id: Some(format!("{t}#{i}")),
        })
        .await;
    }
    let mut seqs = Vec::new();
    while seqs.len() < texts.len() {
        match p.recv_frame().await {
            Received::Msg(ServerMsg::Ack { seq, .. }) => seqs.push(seq),
            r if r.is_meta() => {}
            r => panic!("publisher got {r:?}"),
        }
    }
    seqs
}

/// A channel's whole log on a node, from its JSON transcript (as stored, corrections apart).
pub async fn transcript(base: &str, channel: &str) -> Vec<Value> {
    let url = format!("{base}/v1/events/{EVENT}/channels/{channel}/transcript?format=json");
    let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    v["events"].as_array().cloned().unwrap_or_default()
}

/// A metric's value on a node.
pub async fn metric(base: &str, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}
