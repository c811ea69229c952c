//! TLS on a direct socket, so the fan-out encrypts each frame for this connection and writes
//! it at once, like a plain socket's, without waking a task. The frame's WebSocket framing
//! and JSON stay shared; only the encryption is per connection (it has to be).
//!
//! A TLS 1.3 connection hands its traffic keys over after the upgrade and is served by
//! [`Records`]: the keys and nothing else stay per connection. Others (TLS 1.2, or something
//! still buffered at the upgrade) keep their rustls connection behind the socket's lock, with
//! rustls's send buffer bounded by [`TLS_SEND_BUFFER`].

use std::io::{self, Read, Write};

use tokio::net::TcpStream;
use tokio_rustls::rustls::ServerConnection;

use super::records::Records;

/// Most bytes of plaintext and encrypted records a rustls connection buffers for sending: a
/// few caption frames. A socket that cannot take them is full, as a plain one would be.
pub const TLS_SEND_BUFFER: usize = 16 * 1024;

/// A direct socket's TLS.
pub(super) enum Tls {
    /// TLS 1.3 with the keys taken over from rustls.
    Records(Box<Records>),
    /// Still rustls's connection (TLS 1.2, or data was buffered at the upgrade).
    Rustls(Box<ServerConnection>),
    /// rustls would not hand its keys over: every read and write fails.
    Lost,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tls::Records(_) => "Tls::Records",
            Tls::Rustls(_) => "Tls::Rustls",
            Tls::Lost => "Tls::Lost",
        })
    }
}

/// A connected TCP socket as `std::io` for rustls: non-blocking, `WouldBlock` when not ready.
struct Io<'a>(&'a TcpStream);

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes a rustls connection's pending records; `Ok(true)` once none is left.
fn flush_rustls(conn: &mut ServerConnection, tcp: &TcpStream) -> io::Result<bool> {
    while conn.wants_write() {
        match conn.write_tls(&mut Io(tcp)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn lost() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "TLS keys were not handed over")
}

impl Tls {
    /// The TLS of a connection whose handshake (and HTTP upgrade) is done.
    pub(super) fn new(mut conn: ServerConnection) -> Tls {
        conn.set_buffer_limit(Some(TLS_SEND_BUFFER));
        match Records::take(conn) {
            Ok(records) => Tls::Records(Box::new(records)),
            Err(Some(conn)) => Tls::Rustls(conn),
            Err(None) => Tls::Lost,
        }
    }

    /// Writes the records still waiting; `Ok(true)` once none is left.
    pub(super) fn flush(&mut self, tcp: &TcpStream) -> io::Result<bool> {
        match self {
            Tls::Records(r) => r.flush(tcp),
            Tls::Rustls(conn) => flush_rustls(conn, tcp),
            Tls::Lost => Err(lost()),
        }
    }

    /// Encrypts as much of `plain` as it takes and writes what the socket takes: the plaintext
    /// bytes taken and whether every record is on the wire; `WouldBlock` when earlier records
    /// still wait and nothing was taken.
    pub(super) fn write(&mut self, tcp: &TcpStream, plain: &[u8]) -> io::Result<(usize, bool)> {
        match self {
            Tls::Records(r) => r.write(tcp, plain),
            Tls::Rustls(conn) => {
                if !flush_rustls(conn, tcp)? {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = conn.writer().write(plain)?;
                Ok((n, flush_rustls(conn, tcp)?))
            }
            Tls::Lost => Err(lost()),
        }
    }

    /// Reads decrypted bytes into `buf`: `Ok(0)` at the end of the connection, `WouldBlock`
    /// when nothing is there yet.
    pub(super) fn read(&mut self, tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let conn = match self {
            Tls::Records(r) => return r.read(tcp, buf),
            Tls::Rustls(conn) => conn,
            Tls::Lost => return Err(lost()),
        };
        loop {
            match conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without close_notify: for a WebSocket, the end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if conn.read_tls(&mut Io(tcp))? == 0 {
                return Ok(0);
            }
            let state = conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
            // An alert or a key update to answer goes out now if it can; if it cannot, the
            // next write or flush sends it first.
            while conn.wants_write() && conn.write_tls(&mut Io(tcp)).is_ok() {}
            state?;
        }
    }

    /// Nothing decrypted waits to be read and every record is written: the connection can be
    /// left to the channel (a parked socket is only read when the kernel says so).
    pub(super) fn at_rest(&mut self) -> bool {
        match self {
            Tls::Records(r) => r.at_rest(),
            Tls::Rustls(conn) => match conn.process_new_packets() {
                Ok(state) => state.plaintext_bytes_to_read() == 0 && !conn.wants_write(),
                Err(_) => false,
            },
            Tls::Lost => false,
        }
    }

    /// Records wait to be written.
    pub(super) fn wants_write(&self) -> bool {
        match self {
            Tls::Records(r) => r.wants_write(),
            Tls::Rustls(conn) => conn.wants_write(),
            Tls::Lost => false,
        }
    }

    /// Tells the peer the connection ends (close_notify), before the socket closes.
    pub(super) fn close_notify(&mut self, tcp: &TcpStream) {
        match self {
            Tls::Records(r) => r.close_notify(tcp),
            Tls::Rustls(conn) => conn.send_close_notify(),
            Tls::Lost => {}
        }
    }
}
