//! Ogg Opus (RFC 3533 pages, RFC 7845 Opus mapping), both ways and without I/O: [`OggWriter`]
//! builds the pages of a recording, [`OggReader`] takes the packets out of a byte stream (what
//! `ffmpeg … -f ogg -` or `opusenc` writes, for `babelcast push-audio`).
//!
//! Small enough to own (about 200 lines with the CRC) rather than depend on a crate: pages are
//! a 27-byte header, a lacing table and the packets' bytes, checked by a CRC-32 with the
//! polynomial 0x04c11db7 (not reflected, unlike zlib's).

/// The page header's capture pattern.
const CAPTURE: &[u8; 4] = b"OggS";
/// Bytes of a page header before its segment table.
const PAGE_HEADER: usize = 27;
/// Header type flags.
const CONTINUED: u8 = 1;
const FIRST: u8 = 2;
const LAST: u8 = 4;
/// The most bytes one page can carry (255 segments of 255 bytes).
const MAX_PAGE_BODY: usize = 255 * 255;
/// The encoder delay written in a recording's `OpusHead` (libopus's usual 6.5 ms at 48 kHz).
pub const PRE_SKIP: u16 = 312;

fn crc_table() -> &'static [u32; 256] {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut r = (i as u32) << 24;
            for _ in 0..8 {
                r = if r & 0x8000_0000 != 0 {
                    (r << 1) ^ 0x04c1_1db7
                } else {
                    r << 1
                };
            }
            *e = r;
        }
        t
    })
}

/// The Ogg CRC of `bytes` (a page with its checksum field zeroed).
pub fn crc(bytes: &[u8]) -> u32 {
    let t = crc_table();
    bytes
        .iter()
        .fold(0u32, |c, &b| (c << 8) ^ t[((c >> 24) as u8 ^ b) as usize])
}

/// The `OpusHead` packet of a stream of `channels` channels (mapping family 0).
pub fn opus_head(channels: u8) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(channels);
    h.extend_from_slice(&PRE_SKIP.to_le_bytes());
    h.extend_from_slice(&48_000u32.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}

/// The `OpusTags` packet: vendor and `KEY=value` comments.
pub fn opus_tags(vendor: &str, comments: &[String]) -> Vec<u8> {
    let mut t = b"OpusTags".to_vec();
    t.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    t.extend_from_slice(vendor.as_bytes());
    t.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for c in comments {
        t.extend_from_slice(&(c.len() as u32).to_le_bytes());
        t.extend_from_slice(c.as_bytes());
    }
    t
}

/// Builds the pages of one logical stream.
#[derive(Debug)]
pub struct OggWriter {
    serial: u32,
    seq: u32,
    first: bool,
    /// Packets of the page being built, laced.
    lacing: Vec<u8>,
    body: Vec<u8>,
    granule: i64,
}

impl OggWriter {
    pub fn new(serial: u32) -> OggWriter {
        OggWriter {
            serial,
            seq: 0,
            first: true,
            lacing: Vec::new(),
            body: Vec::new(),
            granule: 0,
        }
    }

    /// Adds a packet ending at `granule` to the page being built; returns a finished page
    /// first if the packet does not fit in it.
    pub fn packet(&mut self, data: &[u8], granule: i64) -> Option<Vec<u8>> {
        let segments = data.len() / 255 + 1;
        let full =
            self.lacing.len() + segments > 255 || self.body.len() + data.len() > MAX_PAGE_BODY;
        let page = (full && !self.lacing.is_empty()).then(|| self.page(false));
        for _ in 0..data.len() / 255 {
            self.lacing.push(255);
        }
        self.lacing.push((data.len() % 255) as u8);
        self.body.extend_from_slice(data);
        self.granule = granule;
        page
    }

    /// Whether packets are waiting for [`page`](Self::page).
    pub fn pending(&self) -> bool {
        !self.lacing.is_empty()
    }

    /// The page of the packets added since the last one (`last`: the stream ends with it).
    pub fn page(&mut self, last: bool) -> Vec<u8> {
        let mut p = Vec::with_capacity(PAGE_HEADER + self.lacing.len() + self.body.len());
        p.extend_from_slice(CAPTURE);
        p.push(0);
        p.push(if self.first { FIRST } else { 0 } | if last { LAST } else { 0 });
        p.extend_from_slice(&self.granule.to_le_bytes());
        p.extend_from_slice(&self.serial.to_le_bytes());
        p.extend_from_slice(&self.seq.to_le_bytes());
        p.extend_from_slice(&[0; 4]);
        p.push(self.lacing.len() as u8);
        p.append(&mut self.lacing);
        p.append(&mut self.body);
        let sum = crc(&p);
        p[22..26].copy_from_slice(&sum.to_le_bytes());
        self.first = false;
        self.seq += 1;
        p
    }
}

/// Why an Ogg stream cannot be relayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OggError {
    #[error("the input is not Ogg (no OggS page found in the first 64 KiB)")]
    NotOgg,
    #[error("the Ogg stream is not Opus (its first packet is not OpusHead)")]
    NotOpus,
    #[error("Opus with {0} channels (mapping family {1}): send mono or stereo (-ac 1)")]
    Channels(u8, u8),
}

/// What [`OggReader::next_packet`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OggPacket {
    /// A new Opus stream began (its `OpusHead`): a new encoder, e.g. a restarted ffmpeg.
    Head { channels: u8 },
    /// An audio packet of the Opus stream.
    Audio(Vec<u8>),
}

/// Takes Opus packets out of an Ogg byte stream fed in pieces. Pages with a bad checksum are
/// skipped (the reader finds the next `OggS`); streams other than the first Opus one that
/// begins are ignored; a stream that begins after the current one ended is followed (a chained
/// file, a restarted encoder).
#[derive(Debug, Default)]
pub struct OggReader {
    buf: Vec<u8>,
    serial: Option<u32>,
    /// Packets of the current stream seen so far (0: OpusHead next, 1: OpusTags next).
    packets: u64,
    partial: Vec<u8>,
    ready: std::collections::VecDeque<Vec<u8>>,
    synced: bool,
    /// The current stream's last page was read.
    ended: bool,
}

impl OggReader {
    /// Adds bytes read from the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next packet, `Ok(None)` when more bytes are needed.
    pub fn next_packet(&mut self) -> Result<Option<OggPacket>, OggError> {
        loop {
            if let Some(p) = self.ready.pop_front() {
                self.packets += 1;
                match self.packets {
                    1 => {
                        if p.len() < 19 || &p[..8] != b"OpusHead" {
                            return Err(OggError::NotOpus);
                        }
                        let (channels, family) = (p[9], p[18]);
                        if family != 0 || channels > 2 {
                            return Err(OggError::Channels(channels, family));
                        }
                        return Ok(Some(OggPacket::Head { channels }));
                    }
                    2 => continue, // OpusTags
                    _ => return Ok(Some(OggPacket::Audio(p))),
                }
            }
            if !self.page()? {
                return Ok(None);
            }
        }
    }

    /// Reads one page from the buffer if a whole one is there; whether it did.
    fn page(&mut self) -> Result<bool, OggError> {
        let Some(start) = self.buf.windows(4).position(|w| w == CAPTURE) else {
            if !self.synced && self.buf.len() > 64 * 1024 {
                return Err(OggError::NotOgg);
            }
            // Keep a possible start of the pattern.
            let keep = self.buf.len().min(3);
            self.buf.drain(..self.buf.len() - keep);
            return Ok(false);
        };
        self.buf.drain(..start);
        if self.buf.len() < PAGE_HEADER {
            return Ok(false);
        }
        let n = self.buf[26] as usize;
        if self.buf.len() < PAGE_HEADER + n {
            return Ok(false);
        }
        let lacing = &self.buf[PAGE_HEADER..PAGE_HEADER + n];
        let body: usize = lacing.iter().map(|&l| l as usize).sum();
        let len = PAGE_HEADER + n + body;
        if self.buf.len() < len {
            return Ok(false);
        }
        let mut check = self.buf[..len].to_vec();
        check[22..26].fill(0);
        let sum = u32::from_le_bytes(self.buf[22..26].try_into().expect("4 bytes"));
        if self.buf[4] != 0 || crc(&check) != sum {
            // Not a page after all (or a damaged one): look for the next pattern.
            self.buf.drain(..1);
            return Ok(true);
        }
        self.synced = true;
        let page: Vec<u8> = self.buf.drain(..len).collect();
        let flags = page[5];
        let serial = u32::from_le_bytes(page[14..18].try_into().expect("4 bytes"));
        if flags & FIRST != 0 && (self.serial.is_none() || self.ended) {
            self.serial = Some(serial);
            self.packets = 0;
            self.ended = false;
            self.partial.clear();
        }
        if self.serial != Some(serial) {
            return Ok(true);
        }
        if flags & CONTINUED == 0 {
            self.partial.clear();
        }
        let mut at = PAGE_HEADER + n;
        for &l in &page[PAGE_HEADER..PAGE_HEADER + n] {
            self.partial.extend_from_slice(&page[at..at + l as usize]);
            at += l as usize;
            if l < 255 {
                self.ready.push_back(std::mem::take(&mut self.partial));
            }
        }
        if flags & LAST != 0 {
            self.ended = true;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream as a recorder writes it: head, tags, audio packets over several pages.
    fn stream(packets: &[Vec<u8>]) -> Vec<u8> {
        let mut w = OggWriter::new(0x1234);
        let mut out = Vec::new();
        assert!(w.packet(&opus_head(1), 0).is_none());
        out.extend(w.page(false));
        w.packet(&opus_tags("babelcast", &["TITLE=t".into()]), 0);
        out.extend(w.page(false));
        for (i, p) in packets.iter().enumerate() {
            if let Some(page) = w.packet(p, 960 * (i as i64 + 1)) {
                out.extend(page);
            }
            if i % 7 == 6 {
                out.extend(w.page(false));
            }
        }
        out.extend(w.page(true));
        out
    }

    #[test]
    fn crc_matches_the_ogg_polynomial() {
        // The checksum of an empty input is 0; "OggS" alone, per the non-reflected CRC-32.
        assert_eq!(crc(b""), 0);
        assert_eq!(crc(b"123456789"), 0x89a1_897f);
    }

    #[test]
    fn writes_and_reads_back_packets_fed_byte_by_byte() {
        let packets: Vec<Vec<u8>> = (0..20u8)
            .map(|i| {
                let mut p = vec![0xf8];
                // Sizes around the 255-byte lacing boundary, one of exactly 255.
                p.resize(if i == 3 { 255 } else { 40 + i as usize * 30 }, i);
                p
            })
            .collect();
        let bytes = stream(&packets);
        let mut r = OggReader::default();
        let mut got = Vec::new();
        for b in &bytes {
            r.feed(std::slice::from_ref(b));
            while let Some(p) = r.next_packet().unwrap() {
                got.push(p);
            }
        }
        assert_eq!(got[0], OggPacket::Head { channels: 1 });
        let audio: Vec<Vec<u8>> = got[1..]
            .iter()
            .map(|p| match p {
                OggPacket::Audio(a) => a.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(audio, packets);
    }

    #[test]
    fn skips_damaged_pages_and_refuses_what_is_not_opus() {
        let packets: Vec<Vec<u8>> = (0..8u8).map(|i| vec![0xf8, i, i]).collect();
        let mut bytes = stream(&packets);
        // Damage a byte of the last page's body: its packets are lost, the rest is read.
        let last = bytes.len() - 2;
        bytes[last] ^= 0xff;
        let mut r = OggReader::default();
        r.feed(&bytes);
        let mut n = 0;
        while let Some(p) = r.next_packet().unwrap() {
            n += matches!(p, OggPacket::Audio(_)) as usize;
        }
        assert!(n < 8 && n > 0, "{n}");
        let mut r = OggReader::default();
        r.feed(&vec![b'x'; 70_000]);
        assert_eq!(r.next_packet(), Err(OggError::NotOgg));
        let mut w = OggWriter::new(1);
        w.packet(b"OpusHeaX-not-a-head-packet", 0);
        let mut r = OggReader::default();
        r.feed(&w.page(true));
        assert_eq!(r.next_packet(), Err(OggError::NotOpus));
        let mut head = opus_head(6);
        head[18] = 1;
        let mut w = OggWriter::new(1);
        w.packet(&head, 0);
        let mut r = OggReader::default();
        r.feed(&w.page(false));
        assert_eq!(r.next_packet(), Err(OggError::Channels(6, 1)));
    }
}
