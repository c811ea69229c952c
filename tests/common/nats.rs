//! [`Nats`]: a real `nats-server -js` for the cluster tests, on a random loopback port, with
//! its own JetStream directory; stopped and restarted on the same port, paused (SIGSTOP, a
//! stalled server: sockets open, nothing answers) and resumed, killed on drop.
//!
//! Without nats-server the cluster tests fail when `CI` is set (`.ci/run` sets `CI=true` and
//! installs it) and are skipped with a message on a developer's machine.
//! `BABELCAST_NATS_SERVER=/path/to/nats-server` runs another build of it.

use std::path::PathBuf;
use std::time::Duration;

use babelcast::cluster::ClusterConfig;

use super::RECV_TIMEOUT;

/// A nats-server with JetStream, killed on drop.
pub struct Nats {
    child: Option<std::process::Child>,
    bin: PathBuf,
    /// The client port (chosen by nats-server at the first start, kept across restarts).
    pub port: u16,
    dir: tempfile::TempDir,
}

/// Whether the tests run in CI (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The nats-server to run: `BABELCAST_NATS_SERVER` if set (a path), else the first on `PATH`
/// or in the usual directories.
fn nats_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BABELCAST_NATS_SERVER") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/sbin".into(),
            "/usr/local/bin".into(),
            "/usr/bin".into(),
        ])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

impl Nats {
    /// Starts nats-server. Without it: panics in CI, and returns `None` (the caller skips,
    /// having printed why) elsewhere.
    pub async fn start() -> Option<Nats> {
        let Some(bin) = nats_binary() else {
            if in_ci() {
                panic!("nats-server is not installed (or BABELCAST_NATS_SERVER names no file), and CI is set: the cluster tests cannot run. .ci/run installs it (apt-get install nats-server)");
            }
            eprintln!("SKIPPED: nats-server is not installed (apt-get install nats-server); this cluster test did not run");
            return None;
        };
        let mut nats = Nats {
            child: None,
            bin,
            port: 0,
            dir: tempfile::tempdir().unwrap(),
        };
        nats.spawn().await;
        Some(nats)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    fn command(&self) -> std::process::Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        // Port -1: nats-server picks a free one (read back from its log).
        let port = if self.port == 0 {
            "-1".to_string()
        } else {
            self.port.to_string()
        };
        let mut c = std::process::Command::new(&self.bin);
        c.args(["-js", "-a", "127.0.0.1", "-p", &port, "-sd"])
            .arg(self.dir.path().join("js"))
            .stdout(std::process::Stdio::null())
            .stderr(log);
        c
    }

    /// Starts the server (again, on the same port and JetStream directory) and waits until it
    /// is ready.
    pub async fn spawn(&mut self) {
        let started = std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .matches("Server is ready")
            .count();
        self.child = Some(self.command().spawn().expect("spawn nats-server"));
        let ready = tokio::time::timeout(RECV_TIMEOUT, async {
            loop {
                let text = std::fs::read_to_string(self.log()).unwrap_or_default();
                if text.matches("Server is ready").count() > started {
                    return text;
                }
                // The port of a stopped server may take a moment to free up: start again.
                if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                    self.child = Some(self.command().spawn().expect("spawn nats-server"));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "nats-server did not start: {}",
                std::fs::read_to_string(self.log()).unwrap_or_default()
            )
        });
        if self.port == 0 {
            let marker = "Listening for client connections on 127.0.0.1:";
            self.port = ready
                .lines()
                .filter_map(|l| l.split(marker).nth(1))
                .next_back()
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or_else(|| panic!("no client port in the nats-server log: {ready}"));
        }
    }

    /// Graceful stop (SIGTERM: JetStream flushes its files), waiting for the exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "-TERM");
            let _ = c.wait();
        }
    }

    /// Stalls the server (SIGSTOP): its sockets stay open, nothing is read or answered.
    pub fn pause(&self) {
        signal(self.child.as_ref().expect("running").id(), "-STOP");
    }

    /// Ends a [`pause`](Self::pause) (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.as_ref().expect("running").id(), "-CONT");
    }

    /// A node's `[cluster]` section on this server, with the test timings: presence expires
    /// after 3 s, a node that hears nothing from NATS for 2 s counts itself cut off.
    pub fn cluster(&self, node: &str) -> ClusterConfig {
        ClusterConfig {
            nats_url: self.url(),
            node_id: Some(node.to_string()),
            presence_ttl_secs: 3,
            stale_after_secs: 2,
            publish_timeout_secs: 30,
            ..Default::default()
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A paused server must be able to die.
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
