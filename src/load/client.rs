//! The load generator's connections: a WebSocket from a chosen loopback source address,
//! opened and read up to its hello, and the reconnect backoff the clients share. The clients
//! themselves are in `listener` and `publisher`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::either::Either;

use super::tls::{Stream, Tls};

/// A client socket: listeners read small frames, so a small read buffer keeps thousands of
/// them cheap on the load generator's side too.
const CLIENT_READ_BUFFER: usize = 4 * 1024;
/// The longest a connection may wait for its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// First and longest pause between reconnect attempts.
pub(super) const BACKOFF_MIN: Duration = Duration::from_millis(50);
pub(super) const BACKOFF_MAX: Duration = Duration::from_millis(1000);

pub(super) type Ws = WebSocketStream<Stream>;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("no hello within {HELLO_TIMEOUT:?}")]
    NoHello,
    #[error("unexpected first message: {0}")]
    BadHello(String),
}

/// What a connection learnt from its hello.
pub(super) struct Hello {
    pub(super) seq: u64,
    pub(super) reset: bool,
}

/// Lets the kernel pick the source port at `connect` (by the whole address 4-tuple) rather
/// than at `bind` (by the local address alone). Without it, a bound socket cannot reuse a port
/// still in TIME_WAIT from an earlier run against another server port, and a 15,000-listener
/// run right after another one exhausts the ephemeral range (EADDRINUSE).
fn bind_no_port(sock: &TcpSocket) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: a valid socket fd and a c_int option value of the size given.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = sock;
    Ok(())
}

/// Opens a WebSocket (over TLS when `tls` is given) to `path` from `source` (when given) and
/// reads the hello.
pub(super) async fn connect(
    addr: SocketAddr,
    host: &str,
    path: &str,
    source: Option<IpAddr>,
    rcvbuf: Option<u32>,
    tls: Option<&Tls>,
) -> Result<(Ws, Hello), ConnectError> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(n) = rcvbuf.filter(|&n| n > 0) {
        sock.set_recv_buffer_size(n)?;
    }
    if let Some(ip) = source {
        bind_no_port(&sock)?;
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = sock.connect(addr).await?;
    stream.set_nodelay(true)?;
    let stream = match tls {
        Some(tls) => tls.wrap(stream).await?,
        None => Either::Left(stream),
    };
    let req = format!("ws://{host}{path}").into_client_request()?;
    let config = WebSocketConfig::default()
        .read_buffer_size(CLIENT_READ_BUFFER)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(config)).await?;
    let hello = loop {
        match tokio::time::timeout(HELLO_TIMEOUT, ws.next()).await {
            Err(_) => return Err(ConnectError::NoHello),
            Ok(None) => return Err(ConnectError::NoHello),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(Some(Ok(Message::Text(t)))) => break t,
            Ok(Some(Ok(_))) => continue,
        }
    };
    let v: serde_json::Value =
        serde_json::from_str(&hello).map_err(|_| ConnectError::BadHello(hello.to_string()))?;
    if v["type"] != "hello" {
        return Err(ConnectError::BadHello(hello.to_string()));
    }
    let seq = v["seq"].as_u64().unwrap_or(0);
    let reset = v["reset"].as_bool().unwrap_or(false);
    Ok((ws, Hello { seq, reset }))
}

/// Connects a listener without `since` to learn the channel's last seq.
pub(super) async fn probe(
    addr: SocketAddr,
    host: &str,
    path: &str,
    tls: Option<&Tls>,
) -> Result<(Ws, u64), ConnectError> {
    let (ws, hello) = connect(addr, host, path, None, None, tls).await?;
    Ok((ws, hello.seq))
}
