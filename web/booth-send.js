// What the booth console sends: partials while typing (throttled; none while an input method
// composes, none on standby), finals with a client id until acked (resent after a reconnect
// or 5 s; the server stores an id once), corrections, and finals held on standby. A final the
// server refuses as not on air is held too: it is never sent again by itself, only by the
// interpreter's "Send now" once on air.

import { t } from "./i18n.js";

/** Least time between two partials sent while typing. */
const PARTIAL_EVERY_MS = 150;
/** A final not acked after this long is sent again (same id, so never stored twice). */
const RESEND_AFTER_MS = 5000;
/** How often unacked finals are checked. */
const RESEND_CHECK_MS = 1000;

export class Sender {
  /**
   * `socket` is the publisher socket; `lines` the console's `Lines`; `air()` tells who is on
   * air ({ standby, partner }); `alert(text)` shows a sentence to the interpreter.
   */
  constructor({ socket, lines, air, alert }) {
    this.socket = socket;
    this.lines = lines;
    this.air = air;
    this.alert = alert;
    /** Finals and edits sent but not yet acked, oldest first. */
    this.pending = [];
    /** Finals not sent (standby, or refused as such): li → { id, text }. */
    this.held = new Map();
    this.counter = 0;
    this.tag = Math.random().toString(36).slice(2, 8);
    this.timer = null;
    this.dirty = false;
    this.last = "";
    /** An input method is composing: its keystrokes are not text yet. */
    this.composing = false;
    /** Partials paused (a line is being corrected). */
    this.paused = false;
    setInterval(() => this.resendLate(), RESEND_CHECK_MS);
  }

  reset() {
    this.pending = [];
    this.held.clear();
    this.cancelPartial();
    this.last = "";
  }

  // ---- partials --------------------------------------------------------------------------

  /** The text in the box changed: send it as the partial, at most one per interval. */
  typed(text) {
    this.text = text;
    if (this.paused || this.composing || this.air().standby) return;
    this.dirty = true;
    if (this.timer !== null) return;
    this.sendPartialNow();
    const again = () => {
      this.timer = null;
      if (this.dirty && !this.paused && !this.composing && !this.air().standby) {
        this.sendPartialNow();
        this.timer = setTimeout(again, PARTIAL_EVERY_MS);
      }
    };
    this.timer = setTimeout(again, PARTIAL_EVERY_MS);
  }

  sendPartialNow() {
    this.dirty = false;
    if (this.text === this.last) return;
    if (this.socket.send({ type: "partial", text: this.text })) this.last = this.text;
  }

  cancelPartial() {
    clearTimeout(this.timer);
    this.timer = null;
    this.dirty = false;
  }

  /** Esc: the line in progress is dropped. */
  clearPartial() {
    this.cancelPartial();
    if (!this.air().standby && this.last) this.socket.send({ type: "partial", text: "" });
    this.last = "";
    this.text = "";
  }

  // ---- finals and corrections ----------------------------------------------------------

  /** Commits `text` as a new line: sent, or held on standby. */
  final(text) {
    this.cancelPartial();
    this.counter += 1;
    const id = `${this.tag}-${this.counter}`;
    const li = this.lines.add(text);
    li.dataset.id = id;
    const { standby, partner } = this.air();
    if (standby) {
      this.hold(li, id, text);
      this.alert(t("booth.alert.held", { name: partner }));
    } else {
      this.send(li, id, text);
    }
    // The server clears the partial this final completes.
    this.last = "";
    this.text = "";
  }

  send(li, id, text) {
    this.lines.setState(li, "pending");
    this.pending.push({ kind: "final", id, text, li, sentAt: Date.now() });
    this.socket.send({ type: "final", text, id });
  }

  hold(li, id, text) {
    this.held.set(li, { id, text });
    this.lines.setState(li, "held");
  }

  /** "Send now" on a held line (offered on air only). */
  sendHeld(li) {
    const h = this.held.get(li);
    if (!h) return;
    this.held.delete(li);
    this.send(li, h.id, h.text);
  }

  discard(li) {
    this.held.delete(li);
    li.remove();
  }

  /** Corrects committed line `li` (seq `seq`) to `text`. */
  edit(li, seq, text) {
    const btext = li.querySelector(".btext");
    if (!text || text === btext.textContent) return;
    this.pending.push({ kind: "edit", of: seq, text, before: btext.textContent, li, sentAt: Date.now() });
    btext.textContent = text;
    this.lines.setState(li, "pending");
    this.socket.send({ type: "edit", of: seq, text });
  }

  /** After a reconnect, everything not acked is sent again (finals keep their ids). */
  resendAll() {
    this.last = "";
    for (const op of this.pending) {
      op.sentAt = Date.now();
      this.socket.send(op.kind === "final" ? { type: "final", text: op.text, id: op.id } : { type: "edit", of: op.of, text: op.text });
    }
  }

  resendLate() {
    const now = Date.now();
    for (const op of this.pending) {
      if (op.kind === "final" && now - op.sentAt > RESEND_AFTER_MS && this.socket.live) {
        op.sentAt = now;
        this.socket.send({ type: "final", text: op.text, id: op.id });
      }
    }
  }

  /** The pending final with this text not committed yet (seen on the channel before its ack). */
  unacked(text) {
    const op = this.pending.find((o) => o.kind === "final" && !o.li.dataset.seq && o.text === text);
    return op ? op.li : null;
  }

  /** The pending op an ack or error is about: a final by its id, an edit by its line. */
  find(m) {
    if (m.id) return this.pending.findIndex((o) => o.id === m.id);
    if (typeof m.of === "number") return this.pending.findIndex((o) => o.kind === "edit" && o.of === m.of);
    return this.pending.findIndex((o) => o.kind === "edit");
  }

  ack(m) {
    const i = this.find(m);
    if (i < 0) return;
    const [op] = this.pending.splice(i, 1);
    if (op.kind === "final") {
      const existing = this.lines.get(m.seq);
      if (existing && existing !== op.li) {
        op.li.remove();
        this.lines.setState(existing, "stored");
      } else {
        this.lines.commit(op.li, m.seq);
        this.lines.setState(op.li, "stored");
      }
    } else {
      this.lines.setState(op.li, "stored");
    }
  }

  /**
   * An error about a line or correction; returns whether it was one. The interpreter reads a
   * sentence, never a code.
   */
  refused(m) {
    const i = m.id || typeof m.of === "number" ? this.find(m) : -1;
    if (i < 0) return false;
    const op = this.pending[i];
    const again = {
      storage_unavailable: "booth.alert.storage",
      cluster_unavailable: "booth.alert.cluster",
      shutting_down: "booth.alert.restarting",
      channel_changed: null,
    }[m.code];
    if (again !== undefined) {
      // Not stored; it stays pending and goes again shortly (after the reconnect, for a
      // channel the organiser just changed).
      op.sentAt = 0;
      if (again) this.alert(t(again));
      return true;
    }
    this.pending.splice(i, 1);
    if (op.kind === "final") {
      // Never sent again by itself: held until "Send now".
      this.hold(op.li, op.id, op.text);
      const key = { not_on_air: "booth.alert.held", text_too_long: "booth.alert.too_long", rate_limited: "booth.alert.too_fast" }[m.code];
      this.alert(key ? t(key, { name: this.air().partner }) : t("booth.alert.other", { message: m.message || "" }));
    } else {
      op.li.querySelector(".btext").textContent = op.before;
      this.lines.setState(op.li, "stored");
      const key = { not_on_air: "booth.alert.edit_standby", unknown_seq: "booth.alert.edit_gone" }[m.code];
      this.alert(t(key || "booth.alert.edit_refused"));
    }
    return true;
  }
}
