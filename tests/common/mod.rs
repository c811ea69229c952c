//! Test harness: a real server on 127.0.0.1:0 with a temporary store, and a typed WebSocket
//! client. Every integration test goes through [`TestServer`].
#![allow(dead_code)]

pub mod admin;
pub mod bin;
pub mod cluster;
pub mod expect;
pub mod nats;
pub mod proxy;
pub mod raw;
mod socket;

#[allow(unused_imports)]
pub use bin::{BinOptions, BinServer};
#[allow(unused_imports)]
pub use expect::*;

use std::path::{Path, PathBuf};
use std::time::Duration;

use babelcast::protocol::{parse_booth, parse_server, BoothMsg, ClientMsg, ServerMsg};
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

/// `ingest.idle_commit_ms` of in-process test servers unless a test sets it: the longest
/// allowed (ten minutes), so silence never commits a line within a test.
pub const IDLE_COMMIT_NEVER_MS: u64 = 600_000;

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
    for (id, lang, source) in [
        ("floor", "auto", None),
        ("en", "en", Some("floor")),
        ("zh", "zh", Some("floor")),
        ("fr", "fr", Some("en")),
    ] {
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

impl Drop for TestServer {
    /// A test that ends without `stop()` still shuts its server down: every task sees the
    /// cancellation, sockets get Close 1001 and the store writer drains.
    fn drop(&mut self) {
        if let Some(s) = &self.server {
            s.shutdown_token().cancel();
        }
    }
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
        let mut config =
            Config::parse(&config_toml(dir), Path::new("test.toml")).expect("test config");
        // No line in progress is committed by silence unless a test asks for it (a loaded
        // machine could otherwise split a test's lines at an unexpected pause).
        config.ingest.idle_commit_ms = IDLE_COMMIT_NEVER_MS;
        f(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let server = Server::start(listener, config, Options::default())
            .await
            .expect("start");
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

    /// Restarts on the same store and the same address, for clients that reconnect by
    /// themselves to the URL they know (the attendee page). The port is re-bound as soon as
    /// the old listener has let go of it, retrying for up to [`RECV_TIMEOUT`].
    pub async fn restart_same_port(&mut self) {
        self.stop().await;
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                // The stopped server's socket may take a moment to let go of the port.
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Err(e) => panic!("cannot re-bind {}: {e}", self.addr),
            }
        };
        let config =
            Config::parse(&config_toml(&self.dir), Path::new("test.toml")).expect("test config");
        let server = Server::start(listener, config, Options::default())
            .await
            .expect("restart");
        self.server = Some(server);
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

    /// Connects a booth publisher with a display name.
    pub async fn publish_as(&self, channel: &str, name: &str) -> WsClient {
        let url = format!(
            "{}?name={name}",
            self.ws(&Self::channel_path(channel, "publish"))
        );
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
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connect");
        let mut c = WsClient {
            ws,
            hello: Value::Null,
        };
        let hello = c.recv().await;
        assert_eq!(
            hello["type"], "hello",
            "first message must be hello: {hello}"
        );
        c.hello = hello;
        let status = c.recv().await;
        assert_eq!(
            status["type"], "status",
            "second message must be status: {status}"
        );
        c
    }

    pub async fn send_json(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
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

    /// The next message whose type is `ty`, skipping status and booth messages (and
    /// nothing else).
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == ty {
                return v;
            }
            assert!(
                v["type"] == "status" || v["type"] == "booth",
                "expected {ty}, got {v}"
            );
        }
    }

    /// The next message that is not a status or booth update.
    pub async fn recv_event(&mut self) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] != "status" && v["type"] != "booth" {
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

    /// The hello this connection started with, typed.
    pub fn hello_msg(&self) -> ServerMsg<'static> {
        serde_json::from_value(self.hello.clone()).expect("the hello is a server message")
    }

    /// The seq and text of the next committed line, skipping status and booth messages (and
    /// failing on anything else).
    pub async fn next_line(&mut self) -> (u64, String) {
        match self.next_msg().await {
            ServerMsg::Line { seq, text, .. } => (seq, text.into_owned()),
            other => panic!("expected a line, got {other:?}"),
        }
    }

    /// The next text frame as it came.
    async fn recv_text(&mut self) -> String {
        loop {
            let msg = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .expect("timed out waiting for a message")
                .expect("connection ended")
                .expect("websocket error");
            match msg {
                Message::Text(t) => return t.to_string(),
                Message::Close(c) => panic!("connection closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next server message, typed with the protocol's own [`ServerMsg`], skipping the
    /// publishers' `booth` messages (see [`WsClient::recv_booth`]).
    pub async fn recv_msg(&mut self) -> ServerMsg<'static> {
        loop {
            let text = self.recv_text().await;
            if let Some(msg) = parse_server(&text) {
                return msg;
            }
            assert!(parse_booth(&text).is_some(), "not a server message: {text}");
        }
    }

    /// The next caption event or answer (line, edit, handover, partial, ack, error, …),
    /// skipping status and booth messages.
    pub async fn next_msg(&mut self) -> ServerMsg<'static> {
        loop {
            match self.recv_msg().await {
                ServerMsg::Status(_) => continue,
                msg => return msg,
            }
        }
    }

    /// The next `booth` message, skipping everything else.
    pub async fn recv_booth(&mut self) -> BoothMsg<'static> {
        loop {
            let text = self.recv_text().await;
            if let Some(b) = parse_booth(&text) {
                return b;
            }
        }
    }

    /// Sends a publisher (or listener) message.
    pub async fn send(&mut self, msg: ClientMsg) {
        self.send_text(&msg.to_json()).await;
    }

    /// Publishes a final and returns the answer: its ack, or the error refusing it.
    pub async fn publish_final(&mut self, text: &str, id: Option<&str>) -> ServerMsg<'static> {
        self.send(ClientMsg::Final {
            text: text.into(),
            id: id.map(Into::into),
        })
        .await;
        self.next_msg().await
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

// ---------------------------------------------------------------------------------------------
// Helpers for the scenario tests (restarts, the database, raw handshakes, slow sockets, and the
// built binary as a child process).

/// Whether a message is channel metadata (status, booth state) rather than a caption event.
pub fn is_meta(v: &Value) -> bool {
    v["type"] == "status" || v["type"] == "booth"
}

impl TestServer {
    /// Restarts on the same store with the test config changed by `f`, on a new port.
    pub async fn restart_with(&mut self, f: impl FnOnce(&mut Config)) {
        self.stop().await;
        let tmp = self._tmp.take();
        let dir = self.dir.clone();
        *self = Self::start_in(&dir, f).await;
        self._tmp = tmp;
    }

    /// The transcript database, opened read-only (as an outside observer would).
    pub fn db(&self) -> rusqlite::Connection {
        open_db(&self.dir)
    }

    /// Connects a listener whose socket has a small receive buffer (a slow phone): while the
    /// client does not read, what the server writes soon stops fitting in the kernel (a few
    /// MB on loopback, mostly the server's send buffer) and the server's session blocks.
    pub async fn listen_slow(&self, channel: &str, since: Option<u64>) -> WsClient {
        let mut url = self.ws(&Self::channel_path(channel, "listen"));
        if let Some(n) = since {
            url.push_str(&format!("?since={n}"));
        }
        WsClient::connect_small_rcvbuf(&url, self.addr).await
    }
}

/// Opens `<dir>/transcripts.db` read-only.
pub fn open_db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        dir.join("transcripts.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open transcripts.db read-only")
}

/// The HTTP status of a WebSocket handshake the server refused (panics if it was accepted).
pub async fn refused_handshake(url: &str, bearer: Option<&str>) -> u16 {
    let mut req = url.into_client_request().expect("request");
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => panic!("handshake to {url} was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("handshake to {url} failed without an HTTP answer: {e}"),
    }
}

/// Polls `f` until it returns `Some`, failing the test after [`RECV_TIMEOUT`].
pub async fn poll_until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
