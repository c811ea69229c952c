//! Sound in the tests: Opus packets that say who sent them, binary frames in and out of the
//! v1 protocol, click tracks as WAV files, and the opus-tools (`opusenc`, `opusinfo`,
//! `opusdec`) the tests use as the real producer and checker of Ogg Opus.
//!
//! Include it with `#[path = "common/sound.rs"] mod sound;` next to `mod common;`.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use babelcast::protocol::audio::AudioHeader;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::common::{WsClient, RECV_TIMEOUT};

/// A well-framed Opus packet (CELT, 20 ms, one frame) whose bytes say who sent it and its
/// number: `[0xf8, tag, n (4 bytes), filler]`. The server checks framing only, so these pass.
pub fn opus_packet(tag: u8, n: u32) -> Vec<u8> {
    let mut p = vec![0xf8, tag];
    p.extend_from_slice(&n.to_be_bytes());
    p.resize(60, 0x55);
    p
}

/// The sender tag and number of a packet made by [`opus_packet`].
pub fn packet_id(opus: &[u8]) -> (u8, u32) {
    (opus[1], u32::from_be_bytes(opus[2..6].try_into().unwrap()))
}

/// What a listener received.
#[derive(Debug)]
pub enum Got {
    Json(Value),
    Packet(AudioHeader, Vec<u8>),
}

impl WsClient {
    /// Sends one Opus packet as a publisher's binary frame (`0x01` + packet).
    pub async fn send_opus(&mut self, packet: &[u8]) {
        let mut frame = vec![1u8];
        frame.extend_from_slice(packet);
        self.ws
            .send(Message::Binary(frame.into()))
            .await
            .expect("send a packet");
    }

    /// The next text or binary message (fails after [`RECV_TIMEOUT`]).
    pub async fn recv_any(&mut self) -> Got {
        self.recv_any_within(RECV_TIMEOUT)
            .await
            .expect("timed out waiting for a message")
    }

    /// The next text or binary message within `within`, `None` if nothing came.
    pub async fn recv_any_within(&mut self, within: Duration) -> Option<Got> {
        loop {
            let msg = tokio::time::timeout(within, self.ws.next()).await.ok()?;
            match msg.expect("connection ended").expect("websocket error") {
                Message::Text(t) => return Some(Got::Json(serde_json::from_str(&t).unwrap())),
                Message::Binary(b) => {
                    let (h, opus) = AudioHeader::decode(&b).expect("a listener frame");
                    return Some(Got::Packet(h, opus.to_vec()));
                }
                Message::Close(c) => panic!("connection closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next sound packet, skipping text messages.
    pub async fn recv_packet(&mut self) -> (AudioHeader, Vec<u8>) {
        loop {
            if let Got::Packet(h, p) = self.recv_any().await {
                return (h, p);
            }
        }
    }

    /// The next text message, failing on a sound packet before it.
    pub async fn recv_json_no_sound(&mut self) -> Value {
        match self.recv_any().await {
            Got::Json(v) => v,
            Got::Packet(h, p) => panic!("unexpected sound packet {h:?} {:?}", packet_id(&p)),
        }
    }
}

/// Writes a mono 16-bit WAV at 48 kHz: `secs` of silence with a tone burst (`freq` Hz, 40 ms,
/// windowed) every `every_ms` milliseconds, starting at `offset_ms`.
pub fn click_wav(path: &Path, secs: f64, freq: f64, every_ms: u64, offset_ms: u64) {
    const RATE: u32 = 48_000;
    let n = (secs * RATE as f64) as usize;
    let burst = (0.040 * RATE as f64) as usize;
    let every = (every_ms * RATE as u64 / 1000) as usize;
    let offset = (offset_ms * RATE as u64 / 1000) as usize;
    let mut data = Vec::with_capacity(n * 2);
    for i in 0..n {
        let k = (i + every - offset % every) % every;
        let v = if k < burst {
            let w = (std::f64::consts::PI * k as f64 / burst as f64).sin();
            0.7 * w * (2.0 * std::f64::consts::PI * freq * i as f64 / RATE as f64).sin()
        } else {
            0.0
        };
        data.extend_from_slice(&((v * 32767.0) as i16).to_le_bytes());
    }
    let mut wav = Vec::with_capacity(44 + data.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&RATE.to_le_bytes());
    wav.extend_from_slice(&(RATE * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    std::fs::write(path, wav).expect("write a WAV file");
}

/// Runs an opus-tools program (Debian `opus-tools`, which `.ci/run` installs); fails the test
/// naming the package when it is missing.
pub fn opus_tool(program: &str, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install opus-tools (apt-get install opus-tools; .ci/run does)")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
