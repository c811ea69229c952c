//! Test harness: a real server on 127.0.0.1:0 with a temporary store, and a typed WebSocket
//! client. Every integration test goes through [`TestServer`].
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use babelcast::{Config, Options, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected message may take before the test fails.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// The test event id.
pub const EVENT: &str = "conf";
/// The admin token of test servers.
pub const ADMIN_TOKEN: &str = "admin-token-123";

/// The publish token of a test channel.
pub fn token(channel: &str) -> String {
    format!("token-{channel}-secret")
}

/// The test config: event `conf` with floor (auto), en, zh (from floor), fr (relay via en).
pub fn config_toml(dir: &Path) -> String {
    let mut s = format!(
        "[server]\nbind = \"127.0.0.1:0\"\nshutdown_grace_secs = 5\n[storage]\ndir = {:?}\n[admin]\ntoken = \"{ADMIN_TOKEN}\"\n[[events]]\nid = \"{EVENT}\"\ntitle = \"Test conference\"\n",
        dir.display().to_string()
    );
    for (id, lang, source) in [("floor", "auto", None), ("en", "en", Some("floor")), ("zh", "zh", Some("floor")), ("fr", "fr", Some("en"))] {
        s.push_str(&format!(
            "[[events.channels]]\nid = \"{id}\"\nlang = \"{lang}\"\npublish_tokens = [\"{}\"]\n",
            token(id)
        ));
        if let Some(src) = source {
            s.push_str(&format!("source = \"{src}\"\n"));
        }
    }
    s
}

/// A running in-process server with its own temporary store.
pub struct TestServer {
    pub server: Option<Server>,
    pub addr: std::net::SocketAddr,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a server with the test config.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server with the test config changed by `f`.
    pub async fn start_with(f: impl FnOnce(&mut Config)) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_in(&dir, f).await;
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on an existing store directory (to test restarts).
    pub async fn start_in(dir: &Path, f: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config::parse(&config_toml(dir), Path::new("test.toml")).expect("test config");
        f(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = Server::start(listener, config, Options::default()).await.expect("start");
        TestServer {
            addr: server.local_addr(),
            server: Some(server),
            dir: dir.to_path_buf(),
            _tmp: None,
        }
    }

    /// Graceful shutdown; returns the store directory for a restart (kept alive by `self`).
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// Restarts on the same store (after [`stop`](Self::stop)), on a new port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let tmp = self._tmp.take();
        let dir = self.dir.clone();
        *self = Self::start_in(&dir, |_| {}).await;
        self._tmp = tmp;
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub fn channel_path(channel: &str, what: &str) -> String {
        format!("/v1/events/{EVENT}/channels/{channel}/{what}")
    }

    /// Connects a listener (optionally resuming after `since`) and reads its hello.
    pub async fn listen(&self, channel: &str, since: Option<u64>) -> WsClient {
        let mut url = self.ws(&Self::channel_path(channel, "listen"));
        if let Some(n) = since {
            url.push_str(&format!("?since={n}"));
        }
        WsClient::connect(&url, None).await
    }

    /// Connects a publisher with the channel's token.
    pub async fn publish(&self, channel: &str) -> WsClient {
        let url = self.ws(&Self::channel_path(channel, "publish"));
        WsClient::connect(&url, Some(&token(channel))).await
    }
}

/// A WebSocket client speaking the v1 protocol.
pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The hello message this connection received.
    pub hello: Value,
}

impl WsClient {
    /// Connects and reads the hello (and the first status) message.
    pub async fn connect(url: &str, bearer: Option<&str>) -> WsClient {
        let mut req = url.into_client_request().expect("request");
        if let Some(t) = bearer {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("connect");
        let mut c = WsClient { ws, hello: Value::Null };
        let hello = c.recv().await;
        assert_eq!(hello["type"], "hello", "first message must be hello: {hello}");
        c.hello = hello;
        let status = c.recv().await;
        assert_eq!(status["type"], "status", "second message must be status: {status}");
        c
    }

    pub async fn send_json(&mut self, v: Value) {
        self.ws.send(Message::Text(v.to_string().into())).await.expect("send");
    }

    pub async fn send_text(&mut self, s: &str) {
        self.ws.send(Message::Text(s.into())).await.expect("send");
    }

    /// The next text message as JSON (fails the test after [`RECV_TIMEOUT`]).
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .expect("timed out waiting for a message")
                .expect("connection ended")
                .expect("websocket error");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).expect("server sent JSON"),
                Message::Close(c) => panic!("connection closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next message whose type is `ty`, skipping status messages (and nothing else).
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == ty {
                return v;
            }
            assert_eq!(v["type"], "status", "expected {ty}, got {v}");
        }
    }

    /// The next message that is not a status.
    pub async fn recv_event(&mut self) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] != "status" {
                return v;
            }
        }
    }

    /// Publishes a final and waits for its ack (skipping status).
    pub async fn final_line(&mut self, text: &str, id: Option<&str>) -> Value {
        let mut m = json!({"type": "final", "text": text});
        if let Some(id) = id {
            m["id"] = json!(id);
        }
        self.send_json(m).await;
        self.recv_event().await
    }

    /// Waits for the server to close the connection; returns the close frame.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            let msg = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .expect("timed out waiting for close");
            match msg {
                Some(Ok(Message::Close(c))) => return c,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }
}
