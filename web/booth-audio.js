// The booth's sound: the interpreter's microphone, encoded to Opus in the browser (WebCodecs
// AudioEncoder, mono, 20 ms packets) and sent as binary frames on the console's publish
// socket. The server applies the booth rule: only the partner on air is heard, so a console
// on standby may keep its microphone on (ready for a handover with no gap) and is still never
// heard. In floor mode the room's sound (a mixer input) goes unprocessed to the channel's
// sound feed instead, heard whenever no interpreter speaks (docs/audio.md).

import { channelPath, Socket, wsUrl } from "./common.js";
import { t } from "./i18n.js";

/** Opus packet length, in microseconds: 20 ms (the latency/overhead balance for voice). */
const FRAME_US = 20000;
/** Bit rates: a voice, and a room (music, applause) in floor mode. */
const VOICE_BPS = 32000;
const FLOOR_BPS = 64000;
/** The first byte of a publisher's binary frame: one Opus packet follows. */
const KIND_OPUS = 1;

/** Why this page cannot send sound, or null when it can. */
function micSupport() {
  if (!window.isSecureContext || !navigator.mediaDevices) return "insecure";
  if (typeof AudioEncoder === "undefined" || typeof AudioData === "undefined" || typeof AudioWorkletNode === "undefined") return "unsupported";
  return null;
}

/** A running microphone: capture, encode, hand each packet to `send`. */
class Microphone {
  constructor(send, onLevel) {
    this.send = send;
    this.onLevel = onLevel;
    this.pos = 0;
  }

  async start(floor) {
    // Created and resumed in the tap's own call stack: Safari allows audio only there.
    this.ctx = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" });
    const resumed = this.ctx.resume();
    // The room's sound as it is; a voice cleaned up by the browser.
    const processing = !floor;
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing },
    });
    await this.ctx.audioWorklet.addModule(new URL("./capture-worklet.js", import.meta.url));
    this.encoder = new AudioEncoder({
      output: (chunk) => {
        const frame = new Uint8Array(chunk.byteLength + 1);
        frame[0] = KIND_OPUS;
        chunk.copyTo(frame.subarray(1));
        this.send(frame.buffer);
      },
      error: () => this.stop(),
    });
    const base = { codec: "opus", sampleRate: this.ctx.sampleRate, numberOfChannels: 1, bitrate: floor ? FLOOR_BPS : VOICE_BPS };
    const tuned = { ...base, opus: { frameDuration: FRAME_US, complexity: 5, application: floor ? "audio" : "voip" } };
    const ok = await AudioEncoder.isConfigSupported(tuned).then((r) => r.supported, () => false);
    this.encoder.configure(ok ? tuned : base);
    const source = this.ctx.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.ctx, "babelcast-capture", { numberOfInputs: 1, numberOfOutputs: 0 });
    this.node.port.onmessage = (e) => this.block(e.data);
    source.connect(this.node);
    await resumed;
  }

  /** 10 ms of samples from the worklet. */
  block(samples) {
    if (!this.encoder || this.encoder.state !== "configured") return;
    let sum = 0;
    for (const x of samples) sum += x * x;
    this.onLevel(Math.min(1, Math.sqrt(sum / samples.length) * 4));
    const data = new AudioData({
      format: "f32-planar",
      sampleRate: this.ctx.sampleRate,
      numberOfFrames: samples.length,
      numberOfChannels: 1,
      timestamp: (this.pos / this.ctx.sampleRate) * 1e6,
      data: samples,
    });
    this.pos += samples.length;
    this.encoder.encode(data);
    data.close();
  }

  stop() {
    if (this.encoder && this.encoder.state !== "closed") this.encoder.close();
    this.encoder = null;
    if (this.stream) for (const tr of this.stream.getTracks()) tr.stop();
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
  }
}

/**
 * The console's sound row. `pub`: the publish Socket; `me()`: `{ channel, token }`;
 * `air()`: `{ mine, standby, partner }` from the last booth message; `event`: the event id.
 */
export class SoundPanel {
  constructor({ pub, me, air, event }) {
    this.pub = pub;
    this.me = me;
    this.air = air;
    this.mic = null;
    this.starting = false;
    this.problem = null;
    this.row = document.getElementById("sound");
    this.button = document.getElementById("mic");
    this.level = document.getElementById("mic-level");
    this.floor = document.getElementById("floor-feed");
    this.text = document.getElementById("mic-state");
    this.feed = new Socket(() => {
      const { channel, token } = this.me();
      return wsUrl(`${channelPath(event, channel, "audio/publish")}?token=${encodeURIComponent(token)}`);
    }, { onState: () => this.refresh() });
    this.button.addEventListener("click", () => (this.mic || this.starting ? this.stop() : this.start()));
    this.floor.addEventListener("change", () => {
      if (this.mic) {
        this.stop();
        this.start();
      }
      this.refresh();
    });
  }

  /** Shows the row for a channel; a floor channel starts in floor mode. */
  show(channel) {
    this.row.hidden = false;
    this.floor.checked = channel.lang === "auto" && !channel.source;
    this.refresh();
  }

  async start() {
    this.problem = micSupport();
    if (this.problem) {
      this.refresh();
      return;
    }
    const floor = this.floor.checked;
    const send = floor ? (b) => this.feed.sendBinary(b) : (b) => this.pub.sendBinary(b);
    const mic = new Microphone(send, (v) => { this.level.value = v; });
    this.starting = true;
    this.refresh();
    try {
      await mic.start(floor);
      if (!this.starting) {
        mic.stop();
        return;
      }
      this.mic = mic;
      if (floor) this.feed.start();
    } catch (e) {
      mic.stop();
      this.problem = e && e.name === "NotFoundError" ? "none" : e && e.name === "NotAllowedError" ? "blocked" : "unsupported";
    }
    this.starting = false;
    this.refresh();
  }

  stop() {
    this.starting = false;
    if (this.mic) this.mic.stop();
    this.mic = null;
    this.feed.stop();
    this.level.value = 0;
    this.refresh();
  }

  /** The row's words, from the microphone, the mode and who is on air. */
  refresh() {
    const on = !!this.mic;
    this.button.setAttribute("aria-pressed", String(on || this.starting));
    this.level.hidden = !on;
    let key;
    let vars = {};
    if (this.problem && !on) key = `booth.sound.${this.problem}`;
    else if (this.starting) key = "booth.sound.starting";
    else if (!on) key = "booth.sound.off";
    else if (!(this.floor.checked ? this.feed : this.pub).live) key = "booth.sound.offline";
    else if (this.floor.checked) key = "booth.sound.feed";
    else {
      const a = this.air();
      key = a.mine ? "booth.sound.on_air" : a.standby ? "booth.sound.standby" : "booth.sound.off_air";
      vars = { name: a.partner };
    }
    this.row.dataset.state = key.replace("booth.sound.", "");
    this.text.textContent = t(key, vars);
  }
}
