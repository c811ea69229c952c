//! [`Proxy`]: a TCP proxy between a node and NATS that the test can cut, to make partitions.
//!
//! - [`Proxy::cut_silently`]: bytes stop flowing both ways on every connection, open or new,
//!   while every socket stays open (a switch that drops packets: nothing tells either side).
//!   Bytes already read are held and delivered after [`Proxy::heal`], as TCP would once the
//!   network is back.
//! - [`Proxy::cut_by_reset`]: every connection is reset (RST) and new ones are reset at once
//!   (a firewall rejecting the node).
//! - [`Proxy::heal`]: connections flow again; new ones reach NATS.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Open,
    Silent,
    Reset,
}

/// A proxy on a loopback port in front of `upstream`; stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.mode.send(Mode::Reset);
        self.task.abort();
    }
}

/// Closes a socket with a reset instead of a FIN.
fn reset(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let mode = watch::Sender::new(Mode::Open);
        let modes = mode.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(relay(client, upstream, modes.subscribe()));
            }
        });
        Proxy { addr, mode, task }
    }

    /// The NATS URL a node behind the proxy uses.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    pub fn cut_silently(&self) {
        self.mode.send_replace(Mode::Silent);
    }

    pub fn cut_by_reset(&self) {
        self.mode.send_replace(Mode::Reset);
    }

    pub fn heal(&self) {
        self.mode.send_replace(Mode::Open);
    }
}

/// Waits until bytes may flow; `false` when the connection must be reset instead.
async fn open(mode: &mut watch::Receiver<Mode>) -> bool {
    match mode.wait_for(|m| *m != Mode::Silent).await {
        Ok(m) => *m == Mode::Open,
        Err(_) => false,
    }
}

/// One connection: held while the proxy is silent, reset while it resets, relayed otherwise.
async fn relay(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if !open(&mut mode).await {
        reset(&client);
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        reset(&client);
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let (mut up, mut down) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        let (n, to_server) = tokio::select! {
            r = cr.read(&mut up) => (r.unwrap_or(0), true),
            r = sr.read(&mut down) => (r.unwrap_or(0), false),
            r = mode.wait_for(|m| *m == Mode::Reset) => {
                if r.is_ok() {
                    break;
                }
                (0, true)
            }
        };
        if n == 0 {
            // One side closed: close the other (gracefully).
            let _ = cw.shutdown().await;
            let _ = sw.shutdown().await;
            return;
        }
        // Read during a silent cut: held until the network is back.
        if !open(&mut mode).await {
            break;
        }
        let written = if to_server {
            sw.write_all(&up[..n]).await
        } else {
            cw.write_all(&down[..n]).await
        };
        if written.is_err() {
            break;
        }
    }
    reset(cw.as_ref());
    reset(sw.as_ref());
}
