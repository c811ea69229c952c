//! The byte stream under one connection: plain TCP or TLS (rustls). One concrete type for
//! hyper and for the WebSocket sessions, so the upgrade code and every session handle both.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::channel::DirectSocket;

/// An accepted connection.
#[derive(Debug)]
pub enum Conn {
    Plain(TcpStream),
    /// Boxed: a TLS session is a few KiB and most deployments terminate TLS in a proxy.
    Tls(Box<TlsStream<TcpStream>>),
    /// After a WebSocket upgrade (plain or TLS), shared with the channel's direct fan-out.
    Direct(DirectSocket),
}

impl Conn {
    /// The connection after a WebSocket upgrade: a [`DirectSocket`] (over TLS, with its rustls
    /// connection) so a listener's channel can write to it directly.
    pub fn upgraded(self) -> Conn {
        match self {
            Conn::Plain(tcp) => Conn::Direct(DirectSocket::new(tcp)),
            Conn::Tls(tls) => {
                let (tcp, conn) = tls.into_inner();
                Conn::Direct(DirectSocket::new_tls(tcp, conn))
            }
            other => other,
        }
    }

    /// The socket the direct fan-out may write to.
    pub fn direct(&self) -> Option<&DirectSocket> {
        match self {
            Conn::Direct(s) => Some(s),
            _ => None,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Direct(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Direct(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Conn::Direct(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
            Conn::Direct(_) => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Direct(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Direct(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
