//! The binary half of the wire format: Opus packets in WebSocket binary frames
//! (docs/protocol.md#sound).
//!
//! A publisher sends `[KIND_OPUS][Opus packet]`; a listener that asked for sound receives
//! `[AudioHeader][Opus packet]`. The server never decodes Opus: it checks a packet's framing
//! (RFC 6716 §3, the table of contents and frame lengths) and reads its duration from it,
//! so a listener's decoder only ever gets well-formed packets.

/// The first byte of a publisher's binary frame holding one Opus packet.
pub const KIND_OPUS: u8 = 1;
/// Bytes of the header before the Opus packet in a listener's binary frame.
pub const HEADER_LEN: usize = 16;
/// Samples per second of every Opus duration (Opus always counts at 48 kHz).
pub const OPUS_RATE: u32 = 48_000;
/// The longest Opus packet (RFC 6716: at most 120 ms of audio).
pub const MAX_PACKET_SAMPLES: u32 = 5_760;
/// The longest compressed Opus frame (RFC 6716 §3.2.1).
const MAX_FRAME_BYTES: usize = 1_275;
/// Header flag: a new voice starts with this packet (another partner, a feed, or the first
/// packet after a silence): the listener resets its decoder and its playout.
pub const FLAG_NEW_VOICE: u8 = 1;

/// What precedes every Opus packet a listener receives (16 bytes, big-endian):
/// `kind:u8 flags:u8 voice:u16 packet:u32 ts:u48 samples:u16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioHeader {
    /// [`FLAG_NEW_VOICE`] when a new voice starts here.
    pub flags: u8,
    /// The voice's number on this server (changes at every new voice; wraps).
    pub voice: u16,
    /// The packet's number on this server's channel: consecutive, so a gap is a packet this
    /// listener did not get (wraps).
    pub packet: u32,
    /// When the server (in a cluster: the node the voice reached first) received it, Unix ms.
    pub ts_ms: i64,
    /// The packet's duration in samples at 48 kHz (120 to 5,760).
    pub samples: u16,
}

impl AudioHeader {
    /// The 16 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = KIND_OPUS;
        b[1] = self.flags;
        b[2..4].copy_from_slice(&self.voice.to_be_bytes());
        b[4..8].copy_from_slice(&self.packet.to_be_bytes());
        let ts = (self.ts_ms.max(0) as u64) & 0xffff_ffff_ffff;
        b[8..14].copy_from_slice(&ts.to_be_bytes()[2..]);
        b[14..16].copy_from_slice(&self.samples.to_be_bytes());
        b
    }

    /// Reads a listener frame: its header and the Opus packet after it.
    pub fn decode(frame: &[u8]) -> Option<(AudioHeader, &[u8])> {
        if frame.len() <= HEADER_LEN || frame[0] != KIND_OPUS {
            return None;
        }
        let mut ts = [0u8; 8];
        ts[2..].copy_from_slice(&frame[8..14]);
        let h = AudioHeader {
            flags: frame[1],
            voice: u16::from_be_bytes([frame[2], frame[3]]),
            packet: u32::from_be_bytes(frame[4..8].try_into().ok()?),
            ts_ms: u64::from_be_bytes(ts) as i64,
            samples: u16::from_be_bytes([frame[14], frame[15]]),
        };
        Some((h, &frame[HEADER_LEN..]))
    }
}

/// Why a publisher's binary frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPacket {
    /// Empty, or a first byte other than [`KIND_OPUS`].
    Kind,
    /// The Opus framing is broken (RFC 6716 §3.4: a length, count or padding that does not fit).
    Framing,
    /// More than 120 ms of audio.
    TooLong,
    /// More bytes than `[audio] max_packet_bytes`.
    TooBig,
}

impl BadPacket {
    /// Words for the publisher.
    pub fn message(self) -> &'static str {
        match self {
            BadPacket::Kind => "a binary frame must be 0x01 followed by one Opus packet",
            BadPacket::Framing => "not a well-formed Opus packet (RFC 6716 section 3)",
            BadPacket::TooLong => "an Opus packet holds at most 120 ms of audio",
            BadPacket::TooBig => "Opus packet larger than [audio] max_packet_bytes",
        }
    }
}

/// The Opus packet in a publisher's binary frame, checked; its duration in samples at 48 kHz.
pub fn publisher_packet(frame: &[u8], max_bytes: usize) -> Result<(&[u8], u32), BadPacket> {
    match frame.split_first() {
        Some((&KIND_OPUS, packet)) if !packet.is_empty() => {
            if packet.len() > max_bytes {
                return Err(BadPacket::TooBig);
            }
            Ok((packet, opus_samples(packet)?))
        }
        _ => Err(BadPacket::Kind),
    }
}

/// Samples (at 48 kHz) of one frame of the packet's configuration (the TOC's top 5 bits).
fn frame_samples(toc: u8) -> u32 {
    let config = toc >> 3;
    match config {
        // SILK: 10, 20, 40, 60 ms.
        0..=11 => [480, 960, 1920, 2880][(config % 4) as usize],
        // Hybrid: 10, 20 ms.
        12..=15 => [480, 960][(config % 2) as usize],
        // CELT: 2.5, 5, 10, 20 ms.
        _ => [120, 240, 480, 960][(config % 4) as usize],
    }
}

/// A frame length of a code 2 or 3 packet (one byte, or two from 252 up); `(length, bytes used)`.
fn frame_len(b: &[u8]) -> Option<(usize, usize)> {
    match b {
        [x, ..] if *x < 252 => Some((*x as usize, 1)),
        [x, y, ..] => Some((*y as usize * 4 + *x as usize, 2)),
        _ => None,
    }
}

/// Checks an Opus packet's framing (RFC 6716 §3.2 and the rules R1–R7 of §3.4) without
/// decoding it; its duration in samples at 48 kHz.
pub fn opus_samples(packet: &[u8]) -> Result<u32, BadPacket> {
    let (&toc, rest) = packet.split_first().ok_or(BadPacket::Framing)?;
    let per_frame = frame_samples(toc);
    let frames = match toc & 3 {
        // One frame (an empty one is a lost or silent frame: the decoder conceals it).
        0 => {
            if rest.len() > MAX_FRAME_BYTES {
                return Err(BadPacket::Framing);
            }
            1
        }
        // Two frames of equal length.
        1 => {
            if rest.len() % 2 != 0 || rest.len() / 2 > MAX_FRAME_BYTES {
                return Err(BadPacket::Framing);
            }
            2
        }
        // Two frames, the first one's length given.
        2 => {
            let (first, used) = frame_len(rest).ok_or(BadPacket::Framing)?;
            let left = rest.len() - used;
            if first > left || first > MAX_FRAME_BYTES || left - first > MAX_FRAME_BYTES {
                return Err(BadPacket::Framing);
            }
            2
        }
        // Any number of frames, with padding and (VBR) their lengths.
        _ => return code3_samples(rest, per_frame),
    };
    Ok(per_frame * frames)
}

fn code3_samples(rest: &[u8], per_frame: u32) -> Result<u32, BadPacket> {
    let (&count, mut rest) = rest.split_first().ok_or(BadPacket::Framing)?;
    let (vbr, padded, m) = (
        count & 0x80 != 0,
        count & 0x40 != 0,
        (count & 0x3f) as usize,
    );
    if m == 0 {
        return Err(BadPacket::Framing);
    }
    if per_frame * m as u32 > MAX_PACKET_SAMPLES {
        return Err(BadPacket::TooLong);
    }
    if padded {
        let mut padding = 0usize;
        loop {
            let (&p, r) = rest.split_first().ok_or(BadPacket::Framing)?;
            rest = r;
            padding += if p == 255 { 254 } else { p as usize };
            if p != 255 {
                break;
            }
        }
        if padding > rest.len() {
            return Err(BadPacket::Framing);
        }
        rest = &rest[..rest.len() - padding];
    }
    if vbr {
        let mut total = 0usize;
        for _ in 0..m - 1 {
            let (len, used) = frame_len(rest).ok_or(BadPacket::Framing)?;
            rest = &rest[used..];
            if len > MAX_FRAME_BYTES {
                return Err(BadPacket::Framing);
            }
            total += len;
        }
        if total > rest.len() || rest.len() - total > MAX_FRAME_BYTES {
            return Err(BadPacket::Framing);
        }
    } else if rest.len() % m != 0 || rest.len() / m > MAX_FRAME_BYTES {
        return Err(BadPacket::Framing);
    }
    Ok(per_frame * m as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = AudioHeader {
            flags: FLAG_NEW_VOICE,
            voice: 513,
            packet: 0x0102_0304,
            ts_ms: 1_790_000_000_123,
            samples: 960,
        };
        let mut frame = h.encode().to_vec();
        frame.extend_from_slice(&[0xf8, 1, 2]);
        let (back, opus) = AudioHeader::decode(&frame).unwrap();
        assert_eq!(back, h);
        assert_eq!(opus, &[0xf8, 1, 2]);
        assert_eq!(&frame[..2], &[KIND_OPUS, FLAG_NEW_VOICE]);
        assert!(AudioHeader::decode(&frame[..HEADER_LEN]).is_none());
    }

    #[test]
    fn reads_durations_from_the_toc() {
        // CELT FB 20 ms, one frame; SILK NB 60 ms; hybrid FB 10 ms; CELT 2.5 ms.
        assert_eq!(opus_samples(&[0xf8, 0xff, 0xfe]), Ok(960));
        assert_eq!(opus_samples(&[0x18, 1]), Ok(2880));
        assert_eq!(opus_samples(&[0x70]), Ok(480));
        assert_eq!(opus_samples(&[0x80, 9]), Ok(120));
        // Code 1: two equal frames (odd length refused).
        assert_eq!(opus_samples(&[0xf9, 1, 2, 3, 4]), Ok(1920));
        assert_eq!(opus_samples(&[0xf9, 1, 2, 3]), Err(BadPacket::Framing));
        // Code 2: first frame 2 bytes, second 1 byte; a first length past the end is refused.
        assert_eq!(opus_samples(&[0xfa, 2, 7, 7, 7]), Ok(1920));
        assert_eq!(opus_samples(&[0xfa, 9, 7]), Err(BadPacket::Framing));
        // Code 3: CBR 3 frames of 20 ms; VBR 2 frames; padding; too long; zero frames.
        assert_eq!(opus_samples(&[0xfb, 3, 1, 2, 3]), Ok(2880));
        assert_eq!(opus_samples(&[0xfb, 0x82, 1, 9, 8, 7]), Ok(1920));
        assert_eq!(opus_samples(&[0xfb, 0x42, 2, 5, 6, 0, 0]), Ok(1920));
        assert_eq!(opus_samples(&[0xfb, 7, 0]), Err(BadPacket::TooLong));
        assert_eq!(opus_samples(&[0xfb, 0]), Err(BadPacket::Framing));
        assert_eq!(opus_samples(&[]), Err(BadPacket::Framing));
    }

    #[test]
    fn checks_publisher_frames() {
        assert_eq!(
            publisher_packet(&[1, 0xf8, 1], 100),
            Ok((&[0xf8, 1][..], 960))
        );
        assert_eq!(publisher_packet(&[2, 0xf8], 100), Err(BadPacket::Kind));
        assert_eq!(publisher_packet(&[1], 100), Err(BadPacket::Kind));
        assert_eq!(
            publisher_packet(&[1, 0xf8, 1, 2], 2),
            Err(BadPacket::TooBig)
        );
    }
}
