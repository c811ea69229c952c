//! Helpers of the cluster tests (`tests/cluster*.rs`): nodes in process and as processes on
//! a [`Nats`], and readers of what publishers and listeners receive.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

pub use super::nats::Nats;
use super::{BinOptions, BinServer, TestServer, WsClient, EVENT, RECV_TIMEOUT};

/// How long a reader below waits for what it looks for (channels send a status heartbeat, so
/// a reader skipping statuses would otherwise never time out).
const WAIT: Duration = Duration::from_secs(30);

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

/// Reads committed events (lines, edits, handovers) until `n` of them arrived.
pub async fn events(c: &mut WsClient, n: usize) -> Vec<Value> {
    within(&format!("{n} events"), async {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let v = c.recv().await;
            if matches!(v["type"].as_str(), Some("line" | "edit" | "handover")) {
                out.push(v);
            }
        }
        out
    })
    .await
}

/// The next booth frame that satisfies `f`.
pub async fn booth_until(c: &mut WsClient, f: impl Fn(&Value) -> bool) -> Value {
    within("a booth frame", async {
        loop {
            let v = c.recv().await;
            if v["type"] == "booth" && f(&v) {
                return v;
            }
        }
    })
    .await
}

/// The next status frame that satisfies `f`.
pub async fn status_until(c: &mut WsClient, f: impl Fn(&Value) -> bool) -> Value {
    within("a status frame", async {
        loop {
            let v = c.recv().await;
            if v["type"] == "status" && f(&v) {
                return v;
            }
        }
    })
    .await
}

/// The newest booth frame a client has received within `quiet` of silence.
pub async fn latest_booth(c: &mut WsClient, mut last: Value, quiet: Duration) -> Value {
    while let Ok(v) = tokio::time::timeout(quiet, c.recv()).await {
        if v["type"] == "booth" {
            last = v;
        }
    }
    last
}

/// Publishes `texts` pipelined (with ids) and returns their acks in order.
pub async fn publish_all(p: &mut WsClient, texts: &[String]) -> Vec<u64> {
    for (i, t) in texts.iter().enumerate() {
        p.send_json(json!({"type": "final", "text": t, "id": format!("{t}#{i}")}))
            .await;
    }
    let mut seqs = Vec::new();
    while seqs.len() < texts.len() {
        let v = p.recv().await;
        match v["type"].as_str() {
            Some("ack") => seqs.push(v["seq"].as_u64().unwrap()),
            Some("status" | "booth") => {}
            _ => panic!("publisher got {v}"),
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
