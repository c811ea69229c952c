//! Recordings of each channel's sound (`[audio] record = true`, off by default): Ogg Opus
//! files next to the transcripts, `{storage.dir}/audio/{event}/{channel}/{unix-ms}.opus`,
//! one file per stretch of sound, named by the Unix millisecond its first packet arrived (the
//! transcript's `ts` clock), so a line's sound is found by its timestamp.
//!
//! Off the hot path: the relay hands each heard packet over with a non-blocking `try_send`
//! into a bounded queue ([`QUEUE`]); one thread writes the files. If the disk falls behind,
//! packets are dropped from the recording (counted), never delayed for listeners. Gaps within
//! a stretch (a handover, a lost packet) are filled with empty Opus frames, which decoders play
//! as silence, so the file's timeline stays the wall clock's. Pages are written at least every
//! second: a `kill -9` loses at most the last second of sound.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;

use crate::formats::ogg::{opus_head, opus_tags, OggWriter};

/// Packets waiting for the writer thread (~10 s of one channel's 20 ms packets).
pub const QUEUE: usize = 512;
/// A silence this long ends a file; the next sound starts a new one.
pub const STRETCH_GAP_MS: i64 = 10_000;
/// A gap longer than this within a stretch is filled with empty frames.
const FILL_AFTER_MS: i64 = 60;
/// One empty Opus frame: CELT, fullband, 20 ms, mono, no data (played as silence).
const EMPTY_FRAME: [u8; 1] = [0xf8];
/// Samples (at 48 kHz) of [`EMPTY_FRAME`].
const EMPTY_SAMPLES: i64 = 960;
/// Audio written to a page before it is flushed to the file (one second at 48 kHz).
const PAGE_SAMPLES: i64 = 48_000;
/// How often the writer looks for stretches that ended.
const TICK: Duration = Duration::from_secs(1);

/// One heard packet, as the recorder needs it.
#[derive(Debug)]
pub struct Recorded {
    pub event: String,
    pub channel: String,
    /// When the server received it, Unix ms.
    pub ts_ms: i64,
    /// Duration in samples at 48 kHz.
    pub samples: u32,
    pub opus: Bytes,
}

enum Msg {
    Packet(Recorded),
    Stop,
}

/// The recorder: a queue into its writer thread.
#[derive(Debug)]
pub struct Recorder {
    tx: mpsc::SyncSender<Msg>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Packets not recorded because the writer was behind.
    pub dropped: AtomicU64,
    /// Packets recorded.
    pub recorded: std::sync::Arc<AtomicU64>,
}

impl Recorder {
    /// Starts the writer thread; files go under `dir` (`{storage.dir}/audio`).
    pub fn start(dir: PathBuf) -> std::io::Result<Recorder> {
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let recorded = std::sync::Arc::new(AtomicU64::new(0));
        let count = recorded.clone();
        let thread = std::thread::Builder::new()
            .name("audio-recorder".into())
            .spawn(move || Writer::new(dir, count).run(rx))?;
        Ok(Recorder {
            tx,
            thread: Mutex::new(Some(thread)),
            dropped: AtomicU64::new(0),
            recorded,
        })
    }

    /// Hands a packet to the writer without waiting; dropped (and counted) if it is behind.
    pub fn record(&self, packet: Recorded) {
        if self.tx.try_send(Msg::Packet(packet)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The recorder's series for `/metrics`.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        for (name, help, v) in [
            (
                "babelcast_audio_recorded_total",
                "Sound packets written to recordings.",
                self.recorded.load(Ordering::Relaxed),
            ),
            (
                "babelcast_audio_recording_dropped_total",
                "Sound packets left out of recordings because the disk fell behind.",
                self.dropped.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
    }

    /// Ends every file properly and stops the writer (at shutdown).
    pub fn close(&self) {
        let _ = self.tx.send(Msg::Stop);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// One channel's file being written.
struct Stretch {
    path: PathBuf,
    file: BufWriter<File>,
    ogg: OggWriter,
    start_ms: i64,
    /// Samples written so far (the granule position).
    granule: i64,
    /// Granule of the last page written.
    paged: i64,
}

impl Stretch {
    fn open(dir: &Path, r: &Recorded) -> std::io::Result<Stretch> {
        let dir = dir.join(&r.event).join(&r.channel);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.opus", r.ts_ms));
        let mut file = BufWriter::new(File::create(&path)?);
        let mut ogg = OggWriter::new(rand::random());
        ogg.packet(&opus_head(1), 0);
        file.write_all(&ogg.page(false))?;
        let comments = [
            format!("TITLE={}/{}", r.event, r.channel),
            format!("BABELCAST_START_UNIX_MS={}", r.ts_ms),
        ];
        ogg.packet(&opus_tags("babelcast", &comments), 0);
        file.write_all(&ogg.page(false))?;
        file.flush()?;
        Ok(Stretch {
            path,
            file,
            ogg,
            start_ms: r.ts_ms,
            granule: 0,
            paged: 0,
        })
    }

    /// Unix ms where the sound written so far ends.
    fn end_ms(&self) -> i64 {
        self.start_ms + self.granule / 48
    }

    fn add(&mut self, data: &[u8], samples: i64) -> std::io::Result<()> {
        self.granule += samples;
        if let Some(page) = self.ogg.packet(data, self.granule) {
            self.file.write_all(&page)?;
        }
        if self.granule - self.paged >= PAGE_SAMPLES {
            self.paged = self.granule;
            self.file.write_all(&self.ogg.page(false))?;
            self.file.flush()?;
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<()> {
        // The last page carries the end-of-stream flag (an empty packet list is fine).
        let page = self.ogg.page(true);
        self.file.write_all(&page)?;
        self.file.flush()
    }
}

struct Writer {
    dir: PathBuf,
    open: HashMap<(String, String), Stretch>,
    recorded: std::sync::Arc<AtomicU64>,
}

impl Writer {
    fn new(dir: PathBuf, recorded: std::sync::Arc<AtomicU64>) -> Writer {
        Writer {
            dir,
            open: HashMap::new(),
            recorded,
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            match rx.recv_timeout(TICK) {
                Ok(Msg::Packet(r)) => {
                    if let Err(e) = self.write(&r) {
                        tracing::warn!(error = %e, event = %r.event, channel = %r.channel, "recording failed; the stretch ends");
                        self.open.remove(&(r.event, r.channel));
                    }
                }
                Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            self.close_quiet(crate::clock::now_ms());
        }
        for (_, s) in self.open.drain() {
            let path = s.path.clone();
            if let Err(e) = s.finish() {
                tracing::warn!(error = %e, path = %path.display(), "could not end a recording");
            }
        }
    }

    fn write(&mut self, r: &Recorded) -> std::io::Result<()> {
        let key = (r.event.clone(), r.channel.clone());
        let ended = self
            .open
            .get(&key)
            .is_some_and(|s| r.ts_ms - s.end_ms() > STRETCH_GAP_MS);
        if ended {
            if let Some(s) = self.open.remove(&key) {
                s.finish()?;
            }
        }
        let s = match self.open.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Stretch::open(&self.dir, r)?),
        };
        let gap = r.ts_ms - s.end_ms();
        if gap > FILL_AFTER_MS {
            for _ in 0..gap * 48 / EMPTY_SAMPLES {
                s.add(&EMPTY_FRAME, EMPTY_SAMPLES)?;
            }
        }
        s.add(&r.opus, r.samples as i64)?;
        self.recorded.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Ends the files of channels silent for [`STRETCH_GAP_MS`].
    fn close_quiet(&mut self, now_ms: i64) {
        let quiet: Vec<_> = self
            .open
            .iter()
            .filter(|(_, s)| now_ms - s.end_ms() > STRETCH_GAP_MS)
            .map(|(k, _)| k.clone())
            .collect();
        for k in quiet {
            if let Some(s) = self.open.remove(&k) {
                if let Err(e) = s.finish() {
                    tracing::warn!(error = %e, "could not end a recording");
                }
            }
        }
    }
}
