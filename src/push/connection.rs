//! One publish connection of `babelcast push`: the handshake with the token and name, the
//! hello, and reading the next server message.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::PushOptions;

/// Time for the TCP connect, the handshake and the hello.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection attempt failed.
pub(super) enum ConnectError {
    /// Worth trying again (refused, reset, timeout, 5xx).
    Transient(String),
    /// Trying again will not help (401, 404, a bad URL).
    Fatal(String),
}

/// Connects with the token as a bearer header and reads the hello.
pub(super) async fn connect(opts: &PushOptions) -> Result<Ws, ConnectError> {
    let mut req = opts
        .connect_url()
        .into_client_request()
        // Never echo the URL's query: it may carry ?token=.
        .map_err(|e| {
            let url = opts.url.split('?').next().unwrap_or_default();
            ConnectError::Fatal(format!("{url}: {e}"))
        })?;
    let bearer = format!("Bearer {}", opts.token)
        .parse()
        .map_err(|_| ConnectError::Fatal("the token is not a valid header value".into()))?;
    req.headers_mut().insert("authorization", bearer);
    let attempt = async {
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| match e {
                tungstenite::Error::Http(resp) if resp.status().is_client_error() => {
                    let body = resp
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).trim().to_string())
                        .unwrap_or_default();
                    ConnectError::Fatal(format!("HTTP {} {body}", resp.status()))
                }
                tungstenite::Error::Url(e) => ConnectError::Fatal(e.to_string()),
                e => ConnectError::Transient(e.to_string()),
            })?;
        // The first message is the hello.
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    if v["type"] == "hello" {
                        return Ok(ws);
                    }
                    return Err(ConnectError::Fatal(format!("expected a hello, got {t}")));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ConnectError::Transient(e.to_string())),
                None => return Err(ConnectError::Transient("closed before hello".into())),
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(ConnectError::Transient("timed out".into())))
}

/// The next message of the connection, or never when there is none.
pub(super) async fn next_msg(ws: &mut Option<Ws>) -> Option<Result<Message, tungstenite::Error>> {
    match ws {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}
