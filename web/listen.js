// The "Listen" control of a caption pane: a toggle button that starts the channel's voice on
// the tap (browsers allow sound then), asks the pane's socket for sound, and says in words
// what is happening: playing, waiting, no voice on this channel now, or why this browser
// cannot play it. Captions go on either way.

import { t } from "./i18n.js";
import { soundSupport, VoicePlayer } from "./audio-player.js";

export class ListenControl {
  /**
   * `pane`: the pane element holding `.listen` and `.listen-state`; `socket`: the pane's
   * Socket; `meta()`: `{ title, artist }` for the lock screen; `onStart(control)`: called
   * when this one starts (the page stops the others).
   */
  constructor(pane, { socket, meta, onStart = () => {} }) {
    this.pane = pane;
    this.socket = socket;
    this.meta = meta;
    this.onStart = onStart;
    this.button = pane.querySelector(".listen");
    this.text = pane.querySelector(".listen-state");
    this.player = null;
    /** Whether the channel has a voice now (the status frame's `audio`). */
    this.voice = false;
    this.key = null;
    // For tests and the curious: the control behind the button.
    this.button.listen = this;
    this.button.addEventListener("click", () => (this.on ? this.stop() : this.start()));
  }

  get on() {
    return this.player !== null;
  }

  start() {
    const why = soundSupport();
    if (why) {
      this.show(why === "insecure" ? "listen.insecure" : "listen.unsupported");
      return;
    }
    this.onStart(this);
    this.player = new VoicePlayer({ ...this.meta(), onState: () => this.refresh() });
    this.player.onPause = () => this.stop();
    this.player.start();
    this.button.setAttribute("aria-pressed", "true");
    this.socket.send({ type: "audio", on: true });
    this.refresh();
  }

  stop() {
    if (!this.player) return;
    this.player.stop();
    this.player = null;
    this.button.setAttribute("aria-pressed", "false");
    this.socket.send({ type: "audio", on: false });
    this.show(null);
  }

  /** The pane's socket got a binary frame. */
  packet(buf) {
    if (this.player) this.player.push(buf);
  }

  /** The pane's status frame. */
  status(s) {
    this.voice = !!s.audio;
    this.refresh();
  }

  refresh() {
    if (!this.player) return;
    const st = this.player.state;
    if (st === "playing") this.show("listen.playing");
    else if (st === "blocked") this.show("listen.blocked");
    else this.show(this.voice ? "listen.waiting" : "listen.no_voice");
    this.pane.dataset.sound = st === "playing" ? "playing" : this.voice ? st : "no-voice";
  }

  /** Shows the words of `key` (null: none); again in the page's language with no key. */
  show(key = this.key) {
    this.key = key;
    this.text.textContent = key ? t(key) : "";
    if (!this.player) this.pane.dataset.sound = key ? key.replace("listen.", "") : "off";
  }
}
