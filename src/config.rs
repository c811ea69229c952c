//! The typed configuration: loaded from TOML in one place, validated, then passed explicitly.
//!
//! Every key has a default (`#[serde(default)]`), so a config file only names what differs.
//! `validate()` reports problems naming the key and the line, which is what
//! `babelcast check-config` prints. A few keys can be overridden from the environment
//! (`BABELCAST_BIND`, `BABELCAST_DATA`, `BABELCAST_ADMIN_TOKEN`; in cluster mode
//! `BABELCAST_NATS_URL`, `BABELCAST_NODE_ID`).
//!
//! The checks live in `validate`; the types holding secrets get their redacting `Debug` in
//! `redact`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

mod audio;
mod certs;
mod cluster;
mod events;
mod ingest;
mod origin;
mod redact;
mod validate;

pub use audio::AudioConfig;
pub use certs::load_ca_file;
pub use cluster::ClusterConfig;
pub use events::{ChannelConfig, EventConfig, ForwardConfig, ForwardKind};
pub use ingest::IngestConfig;
pub use origin::{default_port, parse_origin, Origin};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub admin: AdminConfig,
    pub limits: Limits,
    pub booth: BoothConfig,
    /// `[ingest]`: lines in progress of caption streams (see `ingest`).
    pub ingest: IngestConfig,
    /// `[audio]`: the interpreters' voices (docs/audio.md).
    pub audio: AudioConfig,
    pub events: Vec<EventConfig>,
    /// `[cluster]`: present = this process is one node of a NATS JetStream cluster
    /// (see docs/cluster.md); absent = the single-node default.
    pub cluster: Option<ClusterConfig>,
}

/// `[booth]`: the interpreters' handover rules (see docs/interpreting.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoothConfig {
    /// A standby partner may `take` the channel once the on-air partner has been silent
    /// (no partial or final) this many seconds. 0 disables the rule (handover by request only).
    pub takeover_after_secs: u64,
}

impl Default for BoothConfig {
    fn default() -> Self {
        BoothConfig {
            takeover_after_secs: 30,
        }
    }
}

/// `[server]`: where to listen and how to shut down.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: String,
    /// Base URL printed in publisher links and QR codes; defaults to `http://{bind}`.
    pub public_url: Option<String>,
    /// Seconds to wait for sockets to close and the store to flush on SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// Browser origins (`https://host[:port]`) allowed to open publish sockets, post
    /// captions and call the admin API, besides the server's own origin. Requests without an
    /// `Origin` header (caption software, curl) are not affected. `"*"` allows any origin.
    pub allowed_origins: Vec<String>,
    /// PEM certificate chain: serve HTTPS/WSS natively (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM file of extra CA certificates the egress forwarders trust for `https://` URLs, on
    /// top of the built-in Mozilla roots (a TLS-inspecting proxy's CA, a private CA).
    pub forward_ca_file: Option<Spanned<PathBuf>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            public_url: None,
            shutdown_grace_secs: 10,
            allowed_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            forward_ca_file: None,
        }
    }
}

/// How strongly a commit is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fsync on every group commit: acked lines survive power loss.
    #[default]
    Full,
    /// WAL without fsync per commit: acked lines survive a process crash (`kill -9`), not
    /// a power cut. Faster on slow disks.
    Normal,
}

/// `[storage]`: where transcripts live.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the SQLite transcript database (created if missing).
    pub dir: PathBuf,
    /// `full` (default) or `normal`.
    pub sync: SyncMode,
    /// Extra milliseconds the writer waits to gather more lines into one transaction.
    /// 0 (default) batches whatever arrived while the previous commit ran.
    pub commit_delay_ms: u64,
    /// Lines older than this many days are deleted from the store (hourly). 0 (default):
    /// kept until an organiser deletes them (docs/organisers.md#privacy).
    pub retention_days: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            dir: PathBuf::from("data"),
            sync: SyncMode::Full,
            commit_delay_ms: 0,
            retention_days: 0,
        }
    }
}

/// `[admin]`: the organiser's secret.
#[derive(Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Admin token for the dashboard and admin API; random at start when empty.
    pub token: String,
}

/// `[limits]`: every bound the server enforces.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Lines sent to a listener that joins without `since`.
    pub history_on_join: usize,
    /// Events kept in memory per channel for joins and resumes (older ones come from the store).
    pub history_in_memory: usize,
    /// Longest caption text, in characters.
    pub max_caption_chars: usize,
    /// Largest WebSocket frame or message a client may send, in bytes (close 1009 above it).
    pub max_frame_bytes: usize,
    /// Committed events a listener may be behind before it is caught up from history
    /// or, if history no longer covers it, closed with 4001.
    pub listener_queue: usize,
    /// Unacknowledged finals/edits one publisher connection may have in flight.
    pub publisher_in_flight: usize,
    /// Seconds a write to a client may block before the client is considered dead.
    pub write_timeout_secs: u64,
    /// Seconds between server pings; a client silent for two intervals is closed (4002).
    pub ping_interval_secs: u64,
    /// Largest HTTP request body, in bytes.
    pub max_body_bytes: usize,
    /// Open connections (HTTP and WebSocket) this node accepts; more get HTTP 503.
    /// 0 (default) = the process's open-file limit less a reserve of 256.
    pub max_connections: usize,
    /// Open connections from one client address (IPv4 address or IPv6 /64); more get
    /// HTTP 429. 0 disables. High by default: a whole venue may share one NAT address.
    pub per_ip_max_connections: usize,
    /// New connections per second one client address may open (token bucket, sustained);
    /// faster ones get HTTP 429. 0 disables.
    pub per_ip_connect_rate: f64,
    /// New connections one client address may open at once before the rate applies (a
    /// venue reconnecting after a Wi-Fi drop).
    pub per_ip_connect_burst: usize,
    /// Loopback clients (127.0.0.0/8, ::1) skip the per-address limits: load tests run from
    /// there, and behind a reverse proxy on the same host every client is 127.0.0.1 (limit
    /// per client in the proxy then; see docs/deploy.md).
    pub per_ip_exempt_loopback: bool,
    /// Seconds a client has to send its request head, finish a TLS handshake, or complete a
    /// WebSocket upgrade (slowloris guard).
    pub handshake_timeout_secs: u64,
    /// Seconds an HTTP request (including reading its body) may take before a 408.
    pub request_timeout_secs: u64,
    /// Messages per second one publisher connection may send (token bucket, sustained);
    /// faster ones are refused with `rate_limited`. 0 disables.
    pub publisher_rate: f64,
    /// Messages one publisher connection may send at once before the rate applies.
    pub publisher_burst: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            history_on_join: 50,
            history_in_memory: 1000,
            max_caption_chars: 4000,
            max_frame_bytes: 64 * 1024,
            listener_queue: 512,
            publisher_in_flight: 256,
            write_timeout_secs: 30,
            ping_interval_secs: 30,
            max_body_bytes: 64 * 1024,
            max_connections: 0,
            per_ip_max_connections: 5000,
            per_ip_connect_rate: 200.0,
            per_ip_connect_burst: 2000,
            per_ip_exempt_loopback: true,
            handshake_timeout_secs: 10,
            request_timeout_secs: 30,
            publisher_rate: 100.0,
            publisher_burst: 500,
        }
    }
}

impl Limits {
    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs.max(1))
    }
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_secs.max(1))
    }
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs.max(1))
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }
}

/// A configuration problem, naming the key and (when known) the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {}", problems.join("\n  "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

/// The config file `serve` and `check-config` use when none is named.
pub const DEFAULT_PATH: &str = "config/babelcast.toml";
/// The built-in default (the shipped `config/babelcast.toml`: the demo event), used when
/// there is no config file at all.
pub const BUILT_IN: &str = include_str!("../config/babelcast.toml");

impl Config {
    /// The built-in default with environment overrides: what `serve` runs on with no config
    /// file (after `cargo install`, in a container, under systemd).
    pub fn built_in() -> Config {
        let mut config =
            Config::parse(BUILT_IN, Path::new("(built-in)")).expect("the built-in config is valid");
        config.apply_env(|k| std::env::var(k).ok());
        config
    }

    /// Reads, parses and validates a config file, then applies environment overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        let mut config = Config::parse(&text, path)?;
        config.apply_env(|k| std::env::var(k).ok());
        Ok(config)
    }

    /// Parses and validates TOML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let problems = config.validate(text);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            })
        }
    }

    /// Applies `BABELCAST_*` overrides.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        if let Some(v) = var("BABELCAST_BIND") {
            self.server.bind = v;
        }
        if let Some(v) = var("BABELCAST_DATA") {
            self.storage.dir = v.into();
        }
        if let Some(v) = var("BABELCAST_ADMIN_TOKEN") {
            self.admin.token = v;
        }
        if let Some(cluster) = &mut self.cluster {
            cluster.apply_env(&var);
        }
    }

    /// The event with this id.
    pub fn event(&self, id: &str) -> Option<&EventConfig> {
        self.events.iter().find(|e| e.id.get_ref() == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn the_shipped_config_is_valid() {
        let text = include_str!("../config/babelcast.toml");
        let config = parse(text).unwrap();
        let demo = config.event("demo").unwrap();
        assert_eq!(demo.channels.len(), 7);
    }

    #[test]
    fn unknown_keys_and_bad_types_name_the_line() {
        let err = parse("[server]\nbnd = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("bnd"), "{err}");
    }

    #[test]
    fn env_overrides() {
        let mut c = Config::default();
        c.apply_env(|k| (k == "BABELCAST_BIND").then(|| "0.0.0.0:9".to_string()));
        assert_eq!(c.server.bind, "0.0.0.0:9");
    }
}
