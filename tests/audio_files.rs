//! Ogg Opus in and out, against the reference tools (opus-tools: `opusenc` writes what
//! `babelcast push-audio` reads; `opusinfo` and `opusdec` check what `[audio] record` writes;
//! `ffmpeg` as a room mixer's encoder, piped live as docs/audio.md says): every packet of an
//! encoded file reaches listeners, in order and in real time, and the recording is a valid Ogg
//! Opus file as long as the sound, gaps included.

mod common;
#[path = "common/sound.rs"]
mod sound;

use std::path::{Path, PathBuf};
use std::time::Duration;

use babelcast::formats::ogg::{OggPacket, OggReader};
use common::*;
use sound::*;

/// The audio packets of an Ogg Opus file, read with babelcast's own reader.
fn ogg_packets(path: &Path) -> Vec<Vec<u8>> {
    let mut r = OggReader::default();
    r.feed(&std::fs::read(path).expect("read an Ogg file"));
    let mut out = Vec::new();
    while let Some(p) = r.next_packet().expect("a valid Ogg Opus file") {
        if let OggPacket::Audio(a) = p {
            out.push(a);
        }
    }
    out
}

/// The recordings of `channel` under a server's data directory.
fn recordings(dir: &Path, channel: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("audio").join(EVENT).join(channel))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Seconds of audio `opusdec` decodes from `file` (a 16-bit mono or stereo WAV at 48 kHz).
fn decoded_secs(file: &Path) -> f64 {
    let wav = file.with_extension("wav");
    opus_tool(
        "opusdec",
        &[
            "--rate",
            "48000",
            file.to_str().unwrap(),
            wav.to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(&wav).unwrap().len() as f64;
    (bytes - 44.0) / 2.0 / 48_000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_audio_relays_an_encoded_file_and_the_recording_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let wav = tmp.path().join("click.wav");
    let ogg = tmp.path().join("click.opus");
    click_wav(&wav, 2.0, 1000.0, 500, 100);
    opus_tool(
        "opusenc",
        &[
            "--quiet",
            "--bitrate",
            "24",
            "--framesize",
            "20",
            wav.to_str().unwrap(),
            ogg.to_str().unwrap(),
        ],
    );
    let expected = ogg_packets(&ogg);
    // 2 s of 20 ms packets, and one more for the encoder's delay.
    assert!((100..=101).contains(&expected.len()), "{}", expected.len());
    let n = expected.len();
    let mut s = TestServer::start_with(|c| c.audio.record = true).await;
    let url = s.ws(&format!(
        "{}?audio=1",
        TestServer::channel_path("floor", "listen")
    ));
    let mut l = WsClient::connect(&url, None).await;
    let input = std::fs::File::open(&ogg).unwrap();
    let push = tokio::process::Command::new(env!("CARGO_BIN_EXE_babelcast"))
        .args([
            "push-audio",
            "--url",
            &s.ws(&TestServer::channel_path("floor", "publish")),
        ])
        .env("BABELCAST_TOKEN", token("floor"))
        .stdin(input)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run babelcast push-audio");
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let (h, opus) = l.recv_packet().await;
        got.push((h, opus));
    }
    let out = tokio::time::timeout(RECV_TIMEOUT, push.wait_with_output())
        .await
        .expect("push-audio ends with its input")
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("relayed {n} of {n} Opus packets")),
        "{said}"
    );
    // Every packet, in order, byte for byte, one voice.
    for (i, ((h, opus), want)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(opus, want, "packet {i}");
        assert_eq!(h.voice, got[0].0.voice);
        assert_eq!(h.samples, 960);
    }
    // Sent in real time, not in one burst: 2 s of sound take at least 2 s less the lead.
    let spread = got.last().unwrap().0.ts_ms - got[0].0.ts_ms;
    assert!(spread >= 1500, "the file was sent in {spread} ms");
    // The recording, once the server stopped: one valid file holding the same packets.
    s.stop().await;
    let files = recordings(&s.dir, "floor");
    assert_eq!(files.len(), 1, "{files:?}");
    let info = opus_tool("opusinfo", &[files[0].to_str().unwrap()]);
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("Channels: 1"), "{info}");
    let recorded = ogg_packets(&files[0]);
    let heard: Vec<&Vec<u8>> = recorded.iter().filter(|p| p.len() > 1).collect();
    assert_eq!(
        heard,
        expected.iter().collect::<Vec<_>>(),
        "the same packets, gaps aside"
    );
    let secs = decoded_secs(&files[0]);
    assert!((1.9..2.6).contains(&secs), "{secs} s decoded");
}

#[tokio::test]
async fn a_recording_keeps_the_wall_clock_across_gaps() {
    let mut s = TestServer::start_with(|c| c.audio.record = true).await;
    let mut ana = s.publish_as("en", "Ana").await;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..25 {
        tick.tick().await;
        ana.send_opus(&opus_packet(b'A', i)).await;
    }
    // A second of silence (the microphone off, a handover with no one speaking).
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 25..50 {
        tick.tick().await;
        ana.send_opus(&opus_packet(b'A', i)).await;
    }
    // The last packets are in before the server stops.
    let ack = ana.final_line("done", Some("d")).await;
    assert_eq!(ack["type"], "ack");
    s.stop().await;
    let files = recordings(&s.dir, "en");
    assert_eq!(files.len(), 1, "{files:?}");
    opus_tool("opusinfo", &[files[0].to_str().unwrap()]);
    let packets = ogg_packets(&files[0]);
    let sound = packets.iter().filter(|p| p.len() > 1).count();
    let filled = packets.iter().filter(|p| p.len() == 1).count();
    assert_eq!(sound, 50);
    assert!(
        (40..=60).contains(&filled),
        "the one-second gap is {filled} empty frames"
    );
    let secs = decoded_secs(&files[0]);
    assert!(
        (1.8..2.4).contains(&secs),
        "{secs} s decoded for 1 s of sound and 1 s of gap"
    );
    // Named by the Unix ms of its first packet.
    let stem: i64 = files[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((babelcast::clock::now_ms() - stem).abs() < 60_000);
}

/// The documented mixer pipeline, for real: `ffmpeg … -f ogg - | babelcast push-audio`
/// (ffmpeg's `-re` and a sine stand in for a sound card's live input).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ffmpeg_pipe_reaches_listeners_live() {
    let s = TestServer::start().await;
    let url = s.ws(&format!(
        "{}?audio=1",
        TestServer::channel_path("floor", "listen")
    ));
    let mut l = WsClient::connect(&url, None).await;
    let mut ffmpeg = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("sine=frequency=1000:duration=3")
        .args([
            "-ac",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-application",
            "lowdelay",
        ])
        .args([
            "-frame_duration",
            "20",
            "-page_duration",
            "20000",
            "-flush_packets",
            "1",
        ])
        .args(["-f", "ogg", "-"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run ffmpeg ({e}): install it (apt-get install ffmpeg; .ci/run does)")
        });
    let pipe = std::process::Stdio::from(ffmpeg.stdout.take().unwrap());
    let push = tokio::process::Command::new(env!("CARGO_BIN_EXE_babelcast"))
        .args([
            "push-audio",
            "--url",
            &s.ws(&TestServer::channel_path("floor", "audio/publish")),
        ])
        .env("BABELCAST_TOKEN", token("floor"))
        .stdin(pipe)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run babelcast push-audio");
    // 3 s of 20 ms packets, live.
    let mut got = Vec::new();
    while got.len() < 140 {
        got.push(l.recv_packet().await.0);
    }
    let out = tokio::time::timeout(RECV_TIMEOUT, push.wait_with_output())
        .await
        .expect("push-audio ends with ffmpeg")
        .unwrap();
    assert!(ffmpeg.wait().unwrap().success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(got
        .iter()
        .all(|h| h.samples == 960 && h.voice == got[0].voice));
    assert!(got
        .windows(2)
        .all(|w| w[1].packet == w[0].packet.wrapping_add(1)));
    // Streamed as it was encoded, not at the end.
    let spread = got.last().unwrap().ts_ms - got[0].ts_ms;
    assert!(spread >= 2000, "received over {spread} ms");
}
