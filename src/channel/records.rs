//! TLS 1.3 records of a listener's connection after the handshake, without rustls's buffers:
//! the traffic keys rustls negotiated (extracted once the upgrade is done, as one does for
//! kernel TLS) and rustls's own record encryption and decryption (`MessageEncrypter` /
//! `MessageDecrypter` of the ring provider). What stays per connection is what the encryption
//! needs: the two keys and their sequence numbers. A record being read and bytes not yet
//! written are kept only while they exist (one record at most each way).
//!
//! **Invariants:** every record is sealed with the next sequence number, once (all under the
//! socket's lock); a record that does not open, an alert or a post-handshake message (key
//! update) ends the connection; the connection ends before a key's confidentiality limit.

use std::io;

use bytes::{Buf, Bytes};
use tokio::net::TcpStream;
use tokio_rustls::rustls::crypto::cipher::{
    InboundOpaqueMessage, MessageDecrypter, MessageEncrypter, OutboundChunks, OutboundPlainMessage,
};
use tokio_rustls::rustls::{
    ConnectionTrafficSecrets, ContentType, ProtocolVersion, ServerConnection, SupportedCipherSuite,
};

/// A TLS record header: type, legacy version, length.
const HEADER: usize = 5;
/// Largest plaintext of one record (RFC 8446 §5.1).
const MAX_PLAIN: usize = 16 * 1024;
/// Largest ciphertext of one record (RFC 8446 §5.2).
const MAX_CIPHER: usize = MAX_PLAIN + 256;
/// The alert description of close_notify.
const CLOSE_NOTIFY: u8 = 0;

/// A connection's record layer, from the keys rustls negotiated.
pub(super) struct Records {
    seal: Box<dyn MessageEncrypter>,
    open: Box<dyn MessageDecrypter>,
    tx_seq: u64,
    rx_seq: u64,
    /// Records this connection may seal before its key is worn out (the suite's limit).
    tx_limit: u64,
    /// The record being read: its header, then its body (allocated for it alone).
    head: [u8; HEADER],
    have: usize,
    body: Vec<u8>,
    got: usize,
    /// Decrypted bytes of the last record not read yet (a range of `body`).
    plain: std::ops::Range<usize>,
    /// Sealed bytes not written yet (the rest of one record).
    out: Bytes,
    /// The peer sent close_notify.
    closed: bool,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl Records {
    /// Takes over a TLS 1.3 connection whose handshake is done and which has nothing buffered
    /// either way; gives it back otherwise (it then stays a rustls connection). `Err(None)`:
    /// rustls refused to hand its keys over after all, and the connection is lost.
    pub(super) fn take(
        mut conn: ServerConnection,
    ) -> Result<Records, Option<Box<ServerConnection>>> {
        let Some(SupportedCipherSuite::Tls13(suite)) = conn.negotiated_cipher_suite() else {
            return Err(Some(Box::new(conn)));
        };
        let quiet = conn
            .process_new_packets()
            .is_ok_and(|s| s.plaintext_bytes_to_read() == 0 && s.tls_bytes_to_write() == 0);
        if conn.is_handshaking() || !quiet {
            return Err(Some(Box::new(conn)));
        }
        let secrets = conn.dangerous_extract_secrets().map_err(|e| {
            tracing::warn!(error = %e, "TLS keys not handed over; the connection ends");
        });
        let Ok(secrets) = secrets else {
            return Err(None);
        };
        let (tx_seq, tx) = secrets.tx;
        let (rx_seq, rx) = secrets.rx;
        let keys = |s| match s {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv }
            | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
            | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => Some((key, iv)),
            _ => None,
        };
        let (Some((tk, tiv)), Some((rk, riv))) = (keys(tx), keys(rx)) else {
            return Err(None);
        };
        Ok(Records {
            seal: suite.aead_alg.encrypter(tk, tiv),
            open: suite.aead_alg.decrypter(rk, riv),
            tx_seq,
            rx_seq,
            tx_limit: suite.common.confidentiality_limit,
            head: [0; HEADER],
            have: 0,
            body: Vec::new(),
            got: 0,
            plain: 0..0,
            out: Bytes::new(),
            closed: false,
        })
    }

    /// Nothing decrypted waits to be read and nothing sealed waits to be written (a record
    /// half read is fine: the socket wakes the reader when the rest comes).
    pub(super) fn at_rest(&self) -> bool {
        self.plain.is_empty() && self.out.is_empty()
    }

    pub(super) fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// Writes sealed bytes still waiting; `Ok(true)` once none is left.
    pub(super) fn flush(&mut self, tcp: &TcpStream) -> io::Result<bool> {
        while !self.out.is_empty() {
            match tcp.try_write(&self.out) {
                Ok(n) => self.out.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Seals one record of `typ` holding `plain` and writes what the socket takes.
    fn send(&mut self, tcp: &TcpStream, typ: ContentType, plain: &[u8]) -> io::Result<bool> {
        if self.tx_seq >= self.tx_limit {
            // A fresh connection gets fresh keys; the client reconnects with since=.
            return Err(io::Error::other("TLS key worn out: reconnect"));
        }
        let msg = OutboundPlainMessage {
            typ,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(plain),
        };
        let sealed = self.seal.encrypt(msg, self.tx_seq).map_err(invalid)?;
        self.tx_seq += 1;
        self.out = Bytes::from(sealed.encode());
        self.flush(tcp)
    }

    /// Seals as much of `plain` as one record holds and writes what the socket takes: the
    /// bytes taken and whether all of the record is on the wire; `WouldBlock` when an earlier
    /// record is still waiting.
    pub(super) fn write(&mut self, tcp: &TcpStream, plain: &[u8]) -> io::Result<(usize, bool)> {
        if !self.flush(tcp)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = plain.len().min(MAX_PLAIN);
        let all = self.send(tcp, ContentType::ApplicationData, &plain[..n])?;
        Ok((n, all))
    }

    /// Queues close_notify (written now if the socket takes it, else by the next flush).
    pub(super) fn close_notify(&mut self, tcp: &TcpStream) {
        if self.out.is_empty() {
            let _ = self.send(tcp, ContentType::Alert, &[1, CLOSE_NOTIFY]);
        }
    }

    /// Reads decrypted bytes: `Ok(0)` at the end of the connection, `WouldBlock` when no
    /// whole record is there yet.
    pub(super) fn read(&mut self, tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.plain.is_empty() {
                let n = buf.len().min(self.plain.len());
                let at = self.plain.start;
                buf[..n].copy_from_slice(&self.body[at..at + n]);
                self.plain.start += n;
                if self.plain.is_empty() {
                    self.body = Vec::new();
                }
                return Ok(n);
            }
            if self.closed {
                return Ok(0);
            }
            if self.have < HEADER {
                let n = tcp.try_read(&mut self.head[self.have..])?;
                if n == 0 {
                    return Ok(0);
                }
                self.have += n;
                continue;
            }
            let len = usize::from(u16::from_be_bytes([self.head[3], self.head[4]]));
            if len > MAX_CIPHER {
                return Err(invalid("TLS record over the maximum size"));
            }
            if self.body.len() != len {
                self.body = vec![0; len];
                self.got = 0;
            }
            if self.got < len {
                let n = tcp.try_read(&mut self.body[self.got..])?;
                if n == 0 {
                    return Ok(0);
                }
                self.got += n;
                continue;
            }
            self.open_record()?;
        }
    }

    /// Decrypts the record just read: application data becomes readable, close_notify ends
    /// the stream, anything else ends the connection.
    fn open_record(&mut self) -> io::Result<()> {
        let typ = ContentType::from(self.head[0]);
        let version = ProtocolVersion::from(u16::from_be_bytes([self.head[1], self.head[2]]));
        self.have = 0;
        let base = self.body.as_ptr() as usize;
        let msg = InboundOpaqueMessage::new(typ, version, &mut self.body[..]);
        let plain = self.open.decrypt(msg, self.rx_seq).map_err(invalid)?;
        self.rx_seq += 1;
        let start = plain.payload.as_ptr() as usize - base;
        let range = start..start + plain.payload.len();
        match plain.typ {
            ContentType::ApplicationData if range.is_empty() => self.body = Vec::new(),
            ContentType::ApplicationData => self.plain = range,
            ContentType::Alert if plain.payload.get(1) == Some(&CLOSE_NOTIFY) => {
                self.closed = true;
                self.body = Vec::new();
            }
            ContentType::Alert => return Err(io::ErrorKind::ConnectionAborted.into()),
            // A key update (or anything else after the handshake): this connection cannot
            // follow it; the client reconnects.
            other => return Err(invalid(format!("TLS {other:?} record after the handshake"))),
        }
        Ok(())
    }
}
