//! Raw clients for the hostile-input tests: hand-written HTTP requests, sockets from a chosen
//! loopback address, and WebSocket handshakes whose refusal status can be inspected.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, http};
use tokio_tungstenite::WebSocketStream;

use super::RECV_TIMEOUT;

/// An HTTP response read to the end of the connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Parses a complete HTTP/1.1 response (no chunked decoding: the server answers with
/// Content-Length for everything these tests read).
pub fn parse_response(bytes: &[u8]) -> RawResponse {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Opens a TCP connection to `addr` from the loopback address `from` (like "127.0.0.7").
pub async fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("address"))
        .expect("bind client address");
    socket.connect(addr).await.expect("connect")
}

/// Sends `request` as is on a new connection from 127.0.0.1 and reads the answer to EOF.
pub async fn http(addr: SocketAddr, request: &str) -> RawResponse {
    let stream = TcpStream::connect(addr).await.expect("connect");
    http_on(stream, request.as_bytes()).await
}

/// Sends `request` on `stream` and reads until the server closes it.
pub async fn http_on(mut stream: TcpStream, request: &[u8]) -> RawResponse {
    stream.write_all(request).await.expect("write request");
    let mut buf = Vec::new();
    tokio::time::timeout(RECV_TIMEOUT, stream.read_to_end(&mut buf))
        .await
        .expect("response within the timeout")
        .expect("read response");
    parse_response(&buf)
}

/// A `GET path` with `Connection: close`, from 127.0.0.1.
pub async fn get(addr: SocketAddr, path: &str) -> RawResponse {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// Waits until the server closes `stream` (EOF or reset), returning how long it took.
pub async fn wait_closed(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server kept the connection open for {within:?}"),
        }
    }
}

/// A WebSocket handshake on `stream` with extra request headers.
pub async fn ws_on(
    stream: TcpStream,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<WebSocketStream<TcpStream>, tungstenite::Error> {
    let mut req = url.into_client_request().expect("request");
    for (k, v) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            v.parse().expect("header value"),
        );
    }
    tokio_tungstenite::client_async(req, stream)
        .await
        .map(|(ws, _)| ws)
}

/// A WebSocket handshake from 127.0.0.1 with extra request headers.
pub async fn ws(
    addr: SocketAddr,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<WebSocketStream<TcpStream>, tungstenite::Error> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    ws_on(stream, url, headers).await
}

/// The HTTP status and body of a refused handshake.
pub fn refusal(
    r: Result<WebSocketStream<TcpStream>, tungstenite::Error>,
) -> (u16, serde_json::Value) {
    match r {
        Ok(_) => panic!("the handshake was accepted"),
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| serde_json::from_slice(b).unwrap_or(serde_json::Value::Null))
                .unwrap_or(serde_json::Value::Null);
            (resp.status().as_u16(), body)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
    }
}

/// The value of a `/metrics` sample line such as `babelcast_refusals_total{reason="origin"}`.
pub async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let m = get(addr, "/metrics").await;
    assert_eq!(m.status, 200, "{}", m.body);
    m.body
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
        .trim()
        .parse()
        .expect("a number")
}
