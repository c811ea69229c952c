//! Where a listener's incoming byte stream is, frame by frame (RFC 6455 §5.2), so a listener's
//! socket is only ever read up to the end of the current frame.
//!
//! A listener sends little (pongs, a close, the rare feedback), and a parked listener has no
//! WebSocket state of its own: whoever reads its socket (tungstenite in a session, the
//! channel's reader while parked) reads at most to the next frame boundary. When the session
//! parks, nothing it read is left unparsed in a buffer that would vanish with it.

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
pub(super) const MAX_HEAD: usize = 14;
/// Control frames carry at most this many payload bytes.
pub(super) const MAX_CONTROL_PAYLOAD: u64 = 125;
/// Opcode of a pong frame.
const PONG: u8 = 0xA;

/// The frame structure of a client's byte stream, as far as it has been read.
#[derive(Debug, Default, Clone)]
pub(super) struct Inbound {
    /// Header bytes of the current frame read so far (all of it once `left` counts payload).
    head: [u8; MAX_HEAD],
    have: u8,
    /// The header is complete: `left` payload bytes of this frame are still to come.
    in_payload: bool,
    left: u64,
    /// A fragmented data message has started and its final frame has not been read.
    open_message: bool,
}

/// The raw bytes of a complete header (what a session must parse first when it takes over).
#[derive(Debug, Clone, Copy)]
pub(super) struct HeadBytes([u8; MAX_HEAD], u8);

impl HeadBytes {
    pub(super) fn as_slice(&self) -> &[u8] {
        &self.0[..self.1 as usize]
    }
}

/// What the header of the current frame says, once complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub len: u64,
}

impl Head {
    /// A well-formed pong from a client, which a parked listener answers by itself.
    pub(super) fn is_client_pong(&self) -> bool {
        self.fin
            && self.rsv == 0
            && self.opcode == PONG
            && self.masked
            && self.len <= MAX_CONTROL_PAYLOAD
    }
}

/// Length of a header from its first two bytes.
fn head_len(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

impl Inbound {
    /// Nothing of a frame or a fragmented message is half read: a reader may stop here.
    pub(super) fn at_rest(&self) -> bool {
        self.have == 0 && !self.in_payload && !self.open_message
    }

    /// How many bytes the next read may take without crossing the end of the current frame
    /// (of its header first, then of its payload). Never 0.
    pub(super) fn want(&self) -> usize {
        if self.in_payload {
            return usize::try_from(self.left).unwrap_or(usize::MAX);
        }
        let need = if self.have < 2 {
            2
        } else {
            head_len(self.head[1])
        };
        need - self.have as usize
    }

    /// The current frame's header bytes read so far (the whole header once in its payload).
    pub(super) fn head_bytes(&self) -> &[u8] {
        &self.head[..self.have as usize]
    }

    /// The current frame's header, once complete.
    pub(super) fn head(&self) -> Option<Head> {
        if !self.in_payload && (self.have < 2 || self.have as usize != head_len(self.head[1])) {
            return None;
        }
        let (b0, b1) = (self.head[0], self.head[1]);
        let h = &self.head[2..self.have as usize];
        let len = match b1 & 0x7f {
            126 => u64::from(u16::from_be_bytes([h[0], h[1]])),
            127 => u64::from_be_bytes(h[..8].try_into().expect("8 bytes")),
            n => u64::from(n),
        };
        Some(Head {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode: b0 & 0x0f,
            masked: b1 & 0x80 != 0,
            len,
        })
    }

    /// Accounts for `bytes` just read; they must not be more than [`Self::want`] allowed.
    /// Returns the header these bytes completed, if they did, with its raw bytes.
    pub(super) fn consumed(&mut self, bytes: &[u8]) -> Option<(Head, HeadBytes)> {
        debug_assert!(bytes.len() <= self.want());
        let mut completed = None;
        if self.in_payload {
            self.left -= bytes.len() as u64;
        } else {
            let at = self.have as usize;
            self.head[at..at + bytes.len()].copy_from_slice(bytes);
            self.have += bytes.len() as u8;
            let head = self.head()?;
            completed = Some((head, HeadBytes(self.head, self.have)));
            self.in_payload = true;
            self.left = head.len;
            // Data frames open or close a message; control frames may come in between.
            if head.opcode & 0x8 == 0 {
                self.open_message = !head.fin;
            }
        }
        if self.in_payload && self.left == 0 {
            self.have = 0;
            self.in_payload = false;
        }
        completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(ib: &mut Inbound, mut bytes: &[u8]) -> Vec<usize> {
        let mut steps = Vec::new();
        while !bytes.is_empty() {
            let n = ib.want().min(bytes.len());
            ib.consumed(&bytes[..n]);
            steps.push(n);
            bytes = &bytes[n..];
        }
        steps
    }

    #[test]
    fn reads_stop_at_every_frame_boundary() {
        let mut ib = Inbound::default();
        assert!(ib.at_rest());
        // A masked pong with 2 payload bytes, then a masked text frame of 130 bytes.
        let mut wire = vec![0x8a, 0x82, 1, 2, 3, 4, b'o', b'k'];
        wire.extend([0x81, 0xfe, 0, 130, 9, 9, 9, 9]);
        wire.extend([b'x'; 130]);
        assert_eq!(feed_all(&mut ib, &wire), [2, 4, 2, 2, 6, 130]);
        assert!(ib.at_rest());
    }

    #[test]
    fn knows_a_pong_and_a_half_read_header() {
        let mut ib = Inbound::default();
        assert!(ib.consumed(&[0x8a]).is_none());
        assert!(!ib.at_rest());
        assert_eq!(ib.head(), None);
        ib.consumed(&[0x80]);
        assert_eq!(ib.want(), 4);
        let (empty, _) = ib.consumed(&[1, 2, 3, 4]).expect("complete");
        assert_eq!(empty.len, 0);
        // An empty pong completes with its header.
        assert!(ib.at_rest());
        assert!(ib.consumed(&[0x8a, 0x81]).is_none());
        let (head, raw) = ib.consumed(&[1, 2, 3, 4]).expect("complete header");
        assert!(head.is_client_pong());
        assert_eq!(raw.as_slice(), [0x8a, 0x81, 1, 2, 3, 4]);
        assert_eq!(ib.head(), Some(head));
        assert_eq!((ib.want(), ib.head_bytes().len()), (1, 6));
        ib.consumed(b"z");
        assert!(ib.at_rest());
    }

    #[test]
    fn a_fragmented_message_keeps_the_stream_busy_until_its_last_frame() {
        let mut ib = Inbound::default();
        // Text, not final; a ping in between; the final continuation.
        let wire = [
            0x01, 0x81, 0, 0, 0, 0, b'a', 0x89, 0x80, 0, 0, 0, 0, 0x80, 0x81, 0, 0, 0, 0, b'b',
        ];
        feed_all(&mut ib, &wire[..7]);
        assert!(!ib.at_rest());
        feed_all(&mut ib, &wire[7..13]);
        assert!(!ib.at_rest(), "a control frame does not end the message");
        feed_all(&mut ib, &wire[13..]);
        assert!(ib.at_rest());
    }

    #[test]
    fn long_lengths_are_read_whole() {
        let mut ib = Inbound::default();
        let mut wire = vec![0x82, 0xff];
        wire.extend(70_000u64.to_be_bytes());
        wire.extend([0; 4]);
        feed_all(&mut ib, &wire);
        assert_eq!(ib.head().map(|h| h.len), Some(70_000));
        assert_eq!(ib.want(), 70_000);
        assert!(!ib.head().unwrap().is_client_pong());
    }
}
