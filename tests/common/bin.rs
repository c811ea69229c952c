//! [`BinServer`]: the built `babelcast` binary as a child process, for every test that needs a
//! real process (kill -9, SIGTERM, restarts on the same data directory, the log it writes,
//! its memory and file descriptors, cluster nodes that die).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{config_toml, token, TestServer, WsClient, RECV_TIMEOUT};

/// How to start the binary: the whole config text, extra command-line arguments and the log
/// filter. [`BinOptions::new`] gives the test config on `dir`.
#[derive(Debug, Clone)]
pub struct BinOptions {
    /// Where the config file is written (and, with the test config, the data directory).
    pub dir: PathBuf,
    /// The whole config file.
    pub toml: String,
    /// `--bind` (port 0: the kernel picks one; the address is read from the output).
    pub bind: String,
    /// Arguments after `serve --config FILE --bind ADDR` (e.g. `--log-json`).
    pub args: Vec<String>,
    /// `RUST_LOG` of the process.
    pub rust_log: String,
}

impl BinOptions {
    /// The test config (see [`config_toml`]) with its data in `dir`, logging at info.
    pub fn new(dir: &Path) -> BinOptions {
        BinOptions {
            dir: dir.to_path_buf(),
            toml: config_toml(dir),
            bind: "127.0.0.1:0".into(),
            args: Vec::new(),
            rust_log: "babelcast=info".into(),
        }
    }

    /// Appends whole TOML tables (e.g. `[limits]`, `[cluster]`) to the config.
    pub fn with_toml(mut self, extra: &str) -> BinOptions {
        self.toml.push_str(extra);
        self
    }

    /// Adds a command-line argument.
    pub fn arg(mut self, a: &str) -> BinOptions {
        self.args.push(a.to_string());
        self
    }
}

/// The built `babelcast` binary serving a config from a data directory, as a child process.
/// Killed when dropped.
pub struct BinServer {
    pub child: tokio::process::Child,
    pub addr: std::net::SocketAddr,
    pub dir: PathBuf,
    /// What the process wrote to stderr so far (its log), for assertions and failure messages.
    pub stderr: Arc<Mutex<String>>,
    /// What it wrote to stdout so far (the banner: listening address, links, admin token).
    pub stdout: Arc<Mutex<String>>,
    options: BinOptions,
}

impl BinServer {
    /// Writes the test config into `dir` and starts `babelcast serve` on it (port 0), waiting
    /// for the `babelcast listening on http://ADDR` line.
    pub async fn start(dir: &Path) -> BinServer {
        Self::spawn(BinOptions::new(dir)).await
    }

    /// Like [`start`](Self::start), with `extra_toml` (whole tables, e.g. `[limits]`)
    /// appended to the test config.
    pub async fn start_with(dir: &Path, extra_toml: &str) -> BinServer {
        Self::spawn(BinOptions::new(dir).with_toml(extra_toml)).await
    }

    /// Starts the binary as `options` say and reads the address it bound.
    pub async fn spawn(options: BinOptions) -> BinServer {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
        std::fs::create_dir_all(&options.dir).expect("create the server's directory");
        let config = options.dir.join("babelcast-test.toml");
        std::fs::write(&config, &options.toml).expect("write config");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_babelcast"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(["--bind", options.bind.as_str()])
            .args(&options.args)
            .env("RUST_LOG", &options.rust_log)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn babelcast");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let log = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stdout = Arc::new(Mutex::new(String::new()));
        let banner = stdout.clone();
        let keep = move |line: &str| {
            let mut out = banner.lock().unwrap();
            out.push_str(line);
            out.push('\n');
        };
        // A cluster node connects to NATS and catches up before it listens.
        let addr = tokio::time::timeout(RECV_TIMEOUT * 3, async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                keep(&line);
                if let Some(url) = line.strip_prefix("babelcast listening on http://") {
                    return url.trim().parse().expect("listening address");
                }
            }
            panic!(
                "babelcast exited before listening: {}",
                stderr.lock().unwrap()
            );
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "babelcast did not print its listening address: {}",
                stderr.lock().unwrap()
            )
        });
        // Keep reading stdout: the banner goes on after the first line.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                keep(&line);
            }
        });
        BinServer {
            child,
            addr,
            dir: options.dir.clone(),
            stderr,
            stdout,
            options,
        }
    }

    /// Starts the binary again with the same config on the same data directory (after
    /// [`kill9`](Self::kill9) or an exit), on a new port.
    pub async fn restart(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            panic!("restart of a server that is still running; kill9 or sigterm it first");
        }
        *self = Self::spawn(self.options.clone()).await;
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("process running")
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The standard output so far (the banner).
    pub fn banner(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// SIGKILL (`kill -9`), then reaps the process.
    pub async fn kill9(&mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("wait");
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, failing after `within`.
    pub async fn exit_status(&mut self, within: Duration) -> std::process::ExitStatus {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!(
                "babelcast did not exit within {within:?}; log:\n{}",
                self.log()
            ),
        }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub async fn listen(&self, channel: &str, since: Option<u64>) -> WsClient {
        let mut url = self.ws(&TestServer::channel_path(channel, "listen"));
        if let Some(n) = since {
            url.push_str(&format!("?since={n}"));
        }
        WsClient::connect(&url, None).await
    }

    pub async fn publish(&self, channel: &str) -> WsClient {
        let url = self.ws(&TestServer::channel_path(channel, "publish"));
        WsClient::connect(&url, Some(&token(channel))).await
    }

    /// A booth publisher with a display name.
    pub async fn publish_as(&self, channel: &str, name: &str) -> WsClient {
        let url = format!(
            "{}?name={name}",
            self.ws(&TestServer::channel_path(channel, "publish"))
        );
        WsClient::connect(&url, Some(&token(channel))).await
    }
}
