// The booth's own lines: committed lines and handover notes in seq order, lines on their way
// (sending…), and lines that were not sent because the interpreter was on standby (kept, with
// an explicit "Send now" once on air; never sent by themselves).

import { el } from "./common.js";
import { t } from "./i18n.js";

/** Words shown for each state of a line. */
const STATE_KEYS = { pending: "booth.line.sending", stored: "booth.line.stored", held: "booth.line.held" };

export class Lines {
  /**
   * `list` is the `<ol>`; `onPick(li)` is called when a committed line is chosen for correction,
   * `onSend(li)` / `onDiscard(li)` when a held line's buttons are pressed.
   */
  constructor(list, { onPick, onSend, onDiscard }) {
    this.list = list;
    this.onPick = onPick;
    this.onSend = onSend;
    this.onDiscard = onDiscard;
    this.bySeq = new Map();
    this.onAir = false;
  }

  clear() {
    this.list.replaceChildren();
    this.bySeq.clear();
  }

  /** A new line of this console (not yet committed), added after everything else. */
  add(text) {
    const li = el("li", { class: "bline" });
    const b = el("button", { type: "button", class: "btext" });
    b.textContent = text;
    b.addEventListener("click", () => {
      if (li.dataset.seq) this.onPick(li);
    });
    const send = el("button", { type: "button", class: "btn small send-now", hidden: true }, t("booth.line.send_now"));
    send.addEventListener("click", () => this.onSend(li));
    const discard = el("button", { type: "button", class: "btn small discard", hidden: true }, t("booth.line.discard"));
    discard.addEventListener("click", () => this.onDiscard(li));
    li.append(b, el("span", { class: "state" }), send, discard);
    this.list.append(li);
    return li;
  }

  /** Sets a line's state: pending (sent, waiting for its ack), stored, or held (not sent). */
  setState(li, state) {
    li.dataset.state = state;
    li.querySelector(".state").textContent = t(STATE_KEYS[state] || state);
    this.showButtons(li);
  }

  /** Held lines offer "Send now" only while this console is on air. */
  setOnAir(onAir) {
    this.onAir = onAir;
    for (const li of this.list.querySelectorAll("li.bline[data-state=held]")) this.showButtons(li);
  }

  showButtons(li) {
    const held = li.dataset.state === "held";
    li.querySelector(".send-now").hidden = !(held && this.onAir);
    li.querySelector(".discard").hidden = !held;
  }

  /** Marks `li` committed as `seq`, moving it to its place in seq order. */
  commit(li, seq) {
    li.dataset.seq = String(seq);
    this.bySeq.set(seq, li);
    this.place(li, seq);
  }

  /** A committed line seen on the channel (a partner's, or this console's own before its ack). */
  committed(seq, text) {
    const li = this.add(text);
    this.setState(li, "stored");
    this.commit(li, seq);
    return li;
  }

  /** A handover, as a note in its place among the lines. */
  note(seq, text) {
    const li = el("li", { class: "note", "data-seq": String(seq) }, text);
    this.place(li, seq);
  }

  /**
   * Puts `li` before the first line that is not committed yet or has a later seq: committed
   * lines and notes stay in seq order, lines on their way stay last.
   */
  place(li, seq) {
    const next = [...this.list.children].find((x) => x !== li && (!x.dataset.seq || Number(x.dataset.seq) > seq));
    this.list.insertBefore(li, next || null);
  }

  get(seq) {
    return this.bySeq.get(seq);
  }

  /** Committed lines, oldest first (for ↑/↓ corrections). */
  committedLines() {
    return [...this.list.querySelectorAll("li.bline[data-seq]")];
  }

  /** Sets the words of every line's state and buttons again (after a change of language). */
  relabel() {
    for (const li of this.list.querySelectorAll("li.bline")) {
      this.setState(li, li.dataset.state);
      li.querySelector(".send-now").textContent = t("booth.line.send_now");
      li.querySelector(".discard").textContent = t("booth.line.discard");
    }
  }
}
