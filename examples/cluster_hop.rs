//! Measures the latency a cluster hop adds: one publisher on node 1, listeners spread over
//! three nodes on loopback, against the same load on a single node.
//!
//! ```text
//! ulimit -n 20000
//! cargo run --release --example cluster_hop -- [LISTENERS=5000] [LINES=200] [RATE=10]
//! ```
//!
//! Needs `nats-server` on the PATH (it starts its own with JetStream on a free port). Every
//! line carries the publisher's send time (µs); each listener records receive minus send for
//! every line. Servers, NATS and clients share the machine, so the numbers include the
//! clients' own CPU; compare the two runs, not absolute values across machines.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use babelcast::cluster::ClusterConfig;
use babelcast::{Config, Options, Server};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "bench-token-123";

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn config(dir: &Path) -> Config {
    let text = format!(
        "[server]\nbind = \"127.0.0.1:0\"\n[storage]\ndir = {:?}\nsync = \"normal\"\n[limits]\nper_ip_max_connections = 20000\n\
         [[events]]\nid = \"conf\"\n[[events.channels]]\nid = \"en\"\nlang = \"en\"\npublish_tokens = [\"{TOKEN}\"]\n",
        dir.display().to_string()
    );
    Config::parse(&text, Path::new("bench.toml")).expect("bench config")
}

/// nats-server, its store (removed on drop) and port.
struct Nats(
    std::process::Child,
    #[allow(dead_code)] tempfile::TempDir,
    u16,
);

impl Nats {
    fn start() -> Nats {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("nats.log")).unwrap();
        let child = std::process::Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path().join("js"))
            .stderr(log)
            .spawn()
            .expect("nats-server on the PATH");
        // Owned from here on: killed and reaped on drop, also if it never gets ready.
        let nats = Nats(child, dir, port);
        for _ in 0..200 {
            let log = std::fs::read_to_string(nats.1.path().join("nats.log")).unwrap_or_default();
            if log.contains("Server is ready") {
                return nats;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nats-server did not start");
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one measurement; returns per node the latencies (µs) its listeners saw.
async fn run(nats: Option<&Nats>, listeners: usize, lines: usize, rate: f64) -> Vec<Vec<u64>> {
    let nodes = if nats.is_some() { 3 } else { 1 };
    let mut servers = Vec::new();
    let mut dirs = Vec::new();
    for n in 0..nodes {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        if let Some(nats) = nats {
            c.cluster = Some(ClusterConfig {
                nats_url: format!("nats://127.0.0.1:{}", nats.2),
                node_id: Some(format!("n{}", n + 1)),
                ..Default::default()
            });
        }
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        servers.push(Server::start(l, c, Options::default()).await.unwrap());
        dirs.push(dir);
    }
    let addrs: Vec<_> = servers.iter().map(|s| s.local_addr()).collect();
    let gate = Arc::new(Semaphore::new(64));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(listeners);
    let mut tasks = Vec::new();
    for i in 0..listeners {
        let node = i % nodes;
        let url = format!("ws://{}/v1/events/conf/channels/en/listen", addrs[node]);
        let (gate, ready) = (gate.clone(), ready_tx.clone());
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("listen");
            drop(permit);
            let _ = ready.send(()).await;
            let mut lat = Vec::with_capacity(lines);
            while lat.len() < lines {
                let t = match ws.next().await {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue, // pings, answered by tungstenite
                    _ => break,
                };
                let Some(at) = t.find("\"text\":\"t=") else {
                    continue;
                };
                let digits: String = t[at + 10..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(sent) = digits.parse::<u64>() {
                    lat.push(now_us().saturating_sub(sent));
                }
            }
            (node, lat)
        }));
    }
    drop(ready_tx);
    for _ in 0..listeners {
        ready_rx.recv().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut req = format!("ws://{}/v1/events/conf/channels/en/publish", addrs[0])
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    let acks = tokio::spawn(async move {
        let mut n = 0;
        while n < lines {
            match rx.next().await {
                Some(Ok(Message::Text(t))) if t.contains("\"ack\"") => n += 1,
                Some(Ok(_)) => {}
                _ => break,
            }
        }
    });
    let every = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    for i in 0..lines {
        tokio::time::sleep_until((start + every * i as u32).into()).await;
        let msg = format!(
            r#"{{"type":"final","text":"t={} the delegate from Norway takes the floor, line {i}."}}"#,
            now_us()
        );
        tx.send(Message::Text(msg.into())).await.unwrap();
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), acks).await;
    let mut per_node = vec![Vec::new(); nodes];
    for t in tasks {
        if let Ok(Ok((node, lat))) = tokio::time::timeout(Duration::from_secs(30), t).await {
            per_node[node].extend(lat);
        }
    }
    for s in servers {
        s.shutdown().await;
    }
    per_node
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    v.sort_unstable();
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

fn report(label: &str, per_node: Vec<Vec<u64>>) {
    let mut all: Vec<u64> = per_node.iter().flatten().copied().collect();
    for (n, mut v) in per_node.into_iter().enumerate() {
        println!(
            "{label:<12} node {}  deliveries {:>8}  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            n + 1,
            v.len(),
            pct(&mut v, 0.5),
            pct(&mut v, 0.99),
            pct(&mut v, 1.0)
        );
    }
    println!(
        "{label:<12} all     deliveries {:>8}  p50 {:>7.2} ms  p99 {:>7.2} ms",
        all.len(),
        pct(&mut all, 0.5),
        pct(&mut all, 0.99)
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listeners = args.first().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let lines = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let rate = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10.0);
    println!("{listeners} listeners, {lines} lines at {rate}/s, publisher on node 1");
    report("single node", run(None, listeners, lines, rate).await);
    let nats = Nats::start();
    report("cluster", run(Some(&nats), listeners, lines, rate).await);
}
