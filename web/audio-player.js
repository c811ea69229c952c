// Plays a channel's voice: Opus packets from the listener socket (docs/protocol.md#sound),
// decoded by the browser (WebCodecs AudioDecoder) and scheduled on a Web Audio clock behind a
// small adaptive jitter buffer. Packets are placed by the server's receive time, so a phone
// that stalled (a frozen tab, a Wi-Fi hiccup) drops what is late and resumes with current
// sound instead of playing the backlog. A new voice (a handover) continues the same schedule:
// no gap, no overlap.

/** Bytes of the header before each Opus packet. */
const HEADER = 16;
/** Header flag: a new voice starts here (reset the decoder). */
const FLAG_NEW_VOICE = 1;
/** Opus counts samples at 48 kHz. */
const OPUS_RATE = 48000;
/** Smallest and largest jitter buffer, in ms. */
const TARGET_MIN_MS = 40;
const TARGET_MAX_MS = 400;
/** Headroom over the worst recent delay, in ms. */
const MARGIN_MS = 20;
/** An underrun (this page was too busy to schedule in time) adds this much buffer, in ms;
 * it is given back a step at a time while playback runs smoothly. */
const UNDERRUN_STEP_MS = 20;
const CALM_MS = 10000;
/** How long a delay counts toward the buffer's size (it shrinks back after that), in ms. */
const JITTER_WINDOW_MS = 5000;
/** How long the fastest transit is remembered (the clock offset between server and phone). */
const TRANSIT_WINDOW_MS = 10000;
/** How far the schedule may drift from the packets' times before it is corrected, in s. */
const DRIFT_S = 0.06;
/** No packet for this long: the voice is gone (the page says so). */
const QUIET_MS = 1500;
/** Scheduling headroom before the audio clock's present, in s. */
const LEAD_S = 0.005;

/** Why this page cannot play sound, or null when it can. */
export function soundSupport() {
  if (!window.isSecureContext) return "insecure";
  if (typeof AudioDecoder === "undefined" || typeof EncodedAudioChunk === "undefined") return "unsupported";
  if (!(window.AudioContext || window.webkitAudioContext)) return "unsupported";
  return null;
}

/** The header and Opus packet of a listener frame, or null. */
export function parseFrame(buf) {
  if (!(buf instanceof ArrayBuffer) || buf.byteLength <= HEADER) return null;
  const v = new DataView(buf);
  if (v.getUint8(0) !== 1) return null;
  return {
    flags: v.getUint8(1),
    voice: v.getUint16(2),
    packet: v.getUint32(4),
    ts: v.getUint16(8) * 2 ** 32 + v.getUint32(10),
    samples: v.getUint16(14),
    opus: new Uint8Array(buf, HEADER),
  };
}

/** Minimum over a sliding window, in buckets of a second. */
class WindowMin {
  constructor(windowMs) {
    this.windowMs = windowMs;
    this.buckets = [];
  }

  add(now, v) {
    const b = this.buckets[this.buckets.length - 1];
    if (b && now - b.at < 1000) b.v = Math.min(b.v, v);
    else this.buckets.push({ at: now, v });
    while (this.buckets.length && now - this.buckets[0].at > this.windowMs) this.buckets.shift();
  }

  get value() {
    return this.buckets.reduce((m, b) => Math.min(m, b.v), Infinity);
  }
}

/** Plays one channel's voice. `onState(state)`: "waiting", "playing", "blocked". */
export class VoicePlayer {
  constructor({ title = "", artist = "", onState = () => {} } = {}) {
    this.meta = { title, artist };
    this.onState = onState;
    this.ctx = null;
    this.decoder = null;
    this.state = "off";
    this.transit = new WindowMin(TRANSIT_WINDOW_MS);
    this.jitter = new WindowMin(JITTER_WINDOW_MS);
    this.targetMs = TARGET_MIN_MS;
    /** The least buffer, raised by underruns. */
    this.floorMs = TARGET_MIN_MS;
    this.calmSince = 0;
    this.next = 0;
    this.lastHeard = 0;
    this.lastPacket = null;
    this.quietTimer = null;
    /** For the curious and the tests: what happened to the packets. */
    this.stats = { received: 0, played: 0, late: 0, skipped: 0, underruns: 0, voices: 0, handovers: [], targetMs: 0 };
    this.onVisible = () => {
      if (document.visibilityState === "visible" && this.ctx && this.ctx.state === "suspended") this.ctx.resume();
    };
  }

  /** Starts playing; call from the tap that asked for sound (browsers allow audio then). */
  start() {
    if (this.ctx) return;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    this.ctx = new Ctx({ latencyHint: "interactive" });
    this.out = this.ctx.createGain();
    this.out.connect(this.ctx.destination);
    // iOS: play through the silent switch, like a media app.
    if (navigator.audioSession) {
      try {
        navigator.audioSession.type = "playback";
      } catch {
        // not settable here
      }
    }
    this.ctx.resume().catch(() => this.setState("blocked"));
    this.ctx.onstatechange = () => {
      if (this.ctx && this.ctx.state === "suspended") this.setState("blocked");
      else if (this.ctx && this.state === "blocked") this.setState("waiting");
    };
    this.newDecoder();
    document.addEventListener("visibilitychange", this.onVisible);
    this.mediaSession(true);
    this.setState("waiting");
  }

  /** Stops and lets go of the audio device. */
  stop() {
    document.removeEventListener("visibilitychange", this.onVisible);
    clearTimeout(this.quietTimer);
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    this.decoder = null;
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
    this.lastPacket = null;
    this.mediaSession(false);
    this.state = "off";
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.onState(s);
  }

  mediaSession(on) {
    const ms = navigator.mediaSession;
    if (!ms) return;
    try {
      ms.metadata = on && window.MediaMetadata ? new MediaMetadata({ title: this.meta.title, artist: this.meta.artist, album: "babelcast" }) : null;
      ms.playbackState = on ? "playing" : "none";
      ms.setActionHandler("pause", on ? () => this.onPause && this.onPause() : null);
      ms.setActionHandler("stop", on ? () => this.onPause && this.onPause() : null);
    } catch {
      // an action this browser does not know
    }
  }

  newDecoder() {
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    // The server times of the packets being decoded, oldest first: one frame comes out per
    // packet, in order. (A decoder's own output timestamps run on from its first packet and
    // ignore gaps, such as a server restart: they cannot place a frame.)
    this.decoding = [];
    this.decoder = new AudioDecoder({
      output: (data) => this.frame(data),
      error: () => {
        // A packet the decoder could not take: start a fresh decoder at the next packet.
        this.decoder = null;
      },
    });
    this.decoder.configure({ codec: "opus", sampleRate: OPUS_RATE, numberOfChannels: 1 });
  }

  /** The audio clock's time at wall-clock time `ms` (ms since the epoch). */
  clockAt(ms) {
    const perf = ms - performance.timeOrigin;
    const t = this.ctx.getOutputTimestamp ? this.ctx.getOutputTimestamp() : null;
    if (t && t.performanceTime > 0) return t.contextTime + (perf - t.performanceTime) / 1000;
    return this.ctx.currentTime + (perf - performance.now()) / 1000;
  }

  /** One binary frame from the socket. */
  push(buf) {
    const p = parseFrame(buf);
    if (!p || !this.ctx) return;
    this.stats.received += 1;
    const now = performance.timeOrigin + performance.now();
    const transit = now - p.ts;
    this.transit.add(now, transit);
    const delay = transit - this.transit.value;
    // A delay past the largest buffer is a stall, not jitter: it does not grow the buffer.
    if (delay <= TARGET_MAX_MS) this.jitter.add(now, -delay);
    if (now - this.calmSince > CALM_MS && this.floorMs > TARGET_MIN_MS) {
      this.floorMs -= UNDERRUN_STEP_MS / 2;
      this.calmSince = now;
    }
    this.targetMs = Math.min(TARGET_MAX_MS, Math.max(this.floorMs, -this.jitter.value + MARGIN_MS));
    if (p.flags & FLAG_NEW_VOICE || !this.decoder) {
      if (this.lastPacket && this.decoder) {
        this.stats.handovers.push({ gapMs: p.ts - this.lastPacket.ts, packets: p.packet - this.lastPacket.packet });
      }
      this.stats.voices += 1;
      this.newDecoder();
    }
    this.lastPacket = p;
    // Late already (after a stall): skip it without decoding.
    if (delay > this.targetMs) {
      this.stats.late += 1;
      return;
    }
    try {
      this.decoding.push(p.ts);
      this.decoder.decode(new EncodedAudioChunk({
        type: "key",
        timestamp: p.ts * 1000,
        duration: (p.samples / OPUS_RATE) * 1e6,
        data: p.opus,
      }));
    } catch {
      // A decoder that failed a moment ago: a fresh one takes the next packet.
      this.decoder = null;
    }
  }

  /** A decoded frame: placed at its time, or right after the previous one when close. */
  frame(data) {
    const ts = this.decoding.shift();
    if (!this.ctx || ts === undefined) {
      data.close();
      return;
    }
    const n = data.numberOfFrames;
    const buffer = this.ctx.createBuffer(1, n, data.sampleRate);
    try {
      data.copyTo(buffer.getChannelData(0), { planeIndex: 0, format: "f32-planar" });
    } catch {
      data.copyTo(buffer.getChannelData(0), { planeIndex: 0 });
    }
    const at = this.clockAt(ts + this.transit.value + this.targetMs);
    data.close();
    const now = this.ctx.currentTime;
    if (at + buffer.duration < now) {
      this.stats.late += 1;
      return;
    }
    if (this.next < now + LEAD_S) {
      if (this.stats.played > 0 && this.next > 0 && now - this.next < DRIFT_S * 2) {
        // Ran dry mid-voice: this page needs more buffer.
        this.stats.underruns += 1;
        this.floorMs = Math.min(TARGET_MAX_MS, this.floorMs + UNDERRUN_STEP_MS);
        this.calmSince = performance.timeOrigin + performance.now();
      }
      this.next = Math.max(at, now + LEAD_S);
    } else if (this.next - at > DRIFT_S) {
      // Too far behind the present (the buffer grew): drop this frame to catch up.
      this.stats.skipped += 1;
      return;
    } else if (at - this.next > DRIFT_S) {
      this.next = at;
    }
    const src = this.ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(this.out);
    src.start(this.next);
    this.next += buffer.duration;
    this.stats.played += 1;
    this.stats.targetMs = this.targetMs;
    this.lastHeard = performance.now();
    this.setState("playing");
    clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => {
      if (this.ctx && this.state === "playing") this.setState("waiting");
    }, QUIET_MS);
  }
}
