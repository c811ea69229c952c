//! `[cluster]`: the keys that make a babelcast process one node of a NATS JetStream cluster.

use std::time::Duration;

use serde::Deserialize;

/// `[cluster]` (absent: single node). Every node of one cluster uses the same `stream`,
/// `subject_prefix` and bucket names, the same events and channels, and its own `node_id`
/// and `storage.dir`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// NATS server URL(s), comma-separated (`nats://user:pass@host:4222,nats://host2:4222`).
    pub nats_url: String,
    /// This node's name, unique in the cluster; defaults to the host name.
    pub node_id: Option<String>,
    /// The JetStream stream that orders and keeps every committed event.
    pub stream: String,
    /// First token of every subject babelcast uses (`{prefix}.ev.{event}.{channel}` for
    /// committed events, `{prefix}.partial.{event}.{channel}` for partials).
    pub subject_prefix: String,
    /// Key-value bucket holding who is on air on each channel.
    pub booth_bucket: String,
    /// Key-value bucket holding the live nodes (entries expire after `presence_ttl_secs`).
    pub nodes_bucket: String,
    /// Key-value bucket holding what organisers made at run time (events, channels,
    /// credentials, revocations, deletions), which every node applies (docs/cluster.md).
    pub registry_bucket: String,
    /// Copies JetStream keeps of the stream and buckets (1, or 3 on a three-server NATS
    /// cluster: an acknowledged line then survives the loss of one NATS server).
    pub replicas: usize,
    /// A node that stops refreshing its presence this long is considered dead: its
    /// publishers go off air.
    pub presence_ttl_secs: u64,
    /// How long a committed line may wait for JetStream (through a NATS restart, say)
    /// before the publisher gets `storage_unavailable`.
    pub publish_timeout_secs: u64,
    /// A node that has heard nothing from NATS this long (heartbeats with a deadline) counts
    /// itself cut off from the cluster: nobody is on air through it, its publishers are
    /// refused at once, its listeners are told the feed is interrupted.
    pub stale_after_secs: u64,
    /// How long a starting node may spend catching up from the stream before it serves.
    pub catch_up_timeout_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats_url: String::new(),
            node_id: None,
            stream: "BABELCAST".into(),
            subject_prefix: "babelcast".into(),
            booth_bucket: "babelcast_booth".into(),
            nodes_bucket: "babelcast_nodes".into(),
            registry_bucket: "babelcast_registry".into(),
            replicas: 1,
            presence_ttl_secs: 10,
            publish_timeout_secs: 10,
            stale_after_secs: 3,
            catch_up_timeout_secs: 60,
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ClusterConfig {
    /// Applies `BABELCAST_NATS_URL` and `BABELCAST_NODE_ID` (one config file for every node).
    pub fn apply_env(&mut self, var: &impl Fn(&str) -> Option<String>) {
        if let Some(v) = var("BABELCAST_NATS_URL") {
            self.nats_url = v;
        }
        if let Some(v) = var("BABELCAST_NODE_ID") {
            self.node_id = Some(v);
        }
    }

    /// Problems, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.nats_url.trim().is_empty() {
            p.push("cluster.nats_url: required, like \"nats://127.0.0.1:4222\"".to_string());
        }
        for url in self
            .nats_url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            let scheme_ok =
                ["nats://", "tls://"].iter().any(|s| url.starts_with(s)) || !url.contains("://");
            if !scheme_ok {
                p.push(format!(
                    "cluster.nats_url: {url:?} must be nats://host:port or tls://host:port"
                ));
            }
        }
        if let Some(id) = &self.node_id {
            if !is_token(id) {
                p.push(format!(
                    "cluster.node_id: {id:?} must be 1-64 characters of a-z, A-Z, 0-9, '-' or '_'"
                ));
            }
        }
        for (key, v) in [
            ("cluster.stream", &self.stream),
            ("cluster.subject_prefix", &self.subject_prefix),
            ("cluster.booth_bucket", &self.booth_bucket),
            ("cluster.nodes_bucket", &self.nodes_bucket),
            ("cluster.registry_bucket", &self.registry_bucket),
        ] {
            if !is_token(v) {
                p.push(format!(
                    "{key}: {v:?} must be 1-64 characters of a-z, A-Z, 0-9, '-' or '_'"
                ));
            }
        }
        if !(1..=5).contains(&self.replicas) {
            p.push("cluster.replicas: must be 1 to 5 (JetStream's limit)".to_string());
        }
        if self.presence_ttl_secs < 2 {
            p.push("cluster.presence_ttl_secs: must be at least 2".to_string());
        }
        if self.stale_after_secs == 0 {
            p.push("cluster.stale_after_secs: must be greater than 0".to_string());
        }
        if self.publish_timeout_secs == 0 {
            p.push("cluster.publish_timeout_secs: must be greater than 0".to_string());
        }
        p
    }

    /// This node's id: `node_id`, else the host name, else a random one.
    pub fn resolved_node_id(&self) -> String {
        if let Some(id) = &self.node_id {
            return id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| {
                h.trim()
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .take(64)
                    .collect::<String>()
            })
            .filter(|h| !h.is_empty());
        host.unwrap_or_else(|| format!("node-{:08x}", rand::random::<u32>()))
    }

    pub fn presence_ttl(&self) -> Duration {
        Duration::from_secs(self.presence_ttl_secs.max(2))
    }

    pub fn publish_timeout(&self) -> Duration {
        Duration::from_secs(self.publish_timeout_secs.max(1))
    }

    pub fn stale_after(&self) -> Duration {
        Duration::from_secs(self.stale_after_secs.max(1))
    }

    pub fn catch_up_timeout(&self) -> Duration {
        Duration::from_secs(self.catch_up_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_key() {
        let c = ClusterConfig {
            nats_url: "http://x".into(),
            node_id: Some("a b".into()),
            replicas: 7,
            ..Default::default()
        };
        let p = c.problems().join("\n");
        assert!(p.contains("cluster.nats_url"), "{p}");
        assert!(p.contains("cluster.node_id"), "{p}");
        assert!(p.contains("cluster.replicas"), "{p}");
        let ok = ClusterConfig {
            nats_url: "nats://127.0.0.1:4222, nats://10.0.0.2:4222".into(),
            ..Default::default()
        };
        assert!(ok.problems().is_empty(), "{:?}", ok.problems());
    }

    #[test]
    fn env_overrides_url_and_node() {
        let mut c = ClusterConfig::default();
        c.apply_env(&|k: &str| match k {
            "BABELCAST_NATS_URL" => Some("nats://n:4222".to_string()),
            "BABELCAST_NODE_ID" => Some("n2".to_string()),
            _ => None,
        });
        assert_eq!(
            (c.nats_url.as_str(), c.node_id.as_deref()),
            ("nats://n:4222", Some("n2"))
        );
    }
}
