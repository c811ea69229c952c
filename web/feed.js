// One caption pane: committed lines, the growing partial, edits in place, and auto-scroll that
// pauses while the reader scrolls back. Caption text only ever goes in through textContent.

import { dirOf, langAttr } from "./common.js";
import { t } from "./i18n.js";

/** Distance from the bottom (px) that still counts as "at the live edge". */
const LIVE_EDGE_PX = 48;
/** Lines kept on the page; older ones are in the transcript download. */
const MAX_LINES = 1000;

export class Feed {
  /**
   * `pane` holds `.scroller` > (`.log`, `.partial`, `.waiting`) and a `.jump` button.
   * `onLine(node, msg)` / `onEdit(node, msg)` are called for each new line / applied edit.
   * With `announce` false the log never becomes a live region (a second pane stays quiet).
   */
  constructor(pane, { onLine = () => {}, onEdit = () => {}, announce = true } = {}) {
    this.announce = announce;
    this.pane = pane;
    this.scroller = pane.querySelector(".scroller");
    this.log = pane.querySelector(".log");
    this.partial = pane.querySelector(".partial");
    this.waiting = pane.querySelector(".waiting");
    this.jump = pane.querySelector(".jump");
    this.onLine = onLine;
    this.onEdit = onEdit;
    this.lines = new Map();
    this.lastSeq = null;
    this.lang = "";
    this.paused = false;
    this.unseen = 0;
    this.backlogUntil = 0;
    this.scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
    if (this.jump) this.jump.addEventListener("click", () => this.toLive());
    // A pane that shrinks (dual view, rotation, keyboard) keeps following the live edge.
    new ResizeObserver(() => {
      if (!this.paused) this.toBottom();
    }).observe(this.scroller);
    this.clear();
  }

  /** The channel's declared language: the pane's `lang`/`dir` (RTL layout for Arabic). */
  setLang(tag) {
    this.lang = langAttr(tag);
    this.pane.lang = this.lang;
    this.pane.dir = paneDir(tag);
    this.partial.lang = this.lang;
  }

  clear() {
    this.log.replaceChildren();
    this.lines.clear();
    this.lastSeq = null;
    this.setPartial("");
    this.toLive();
  }

  /** Applies one listener message. */
  handle(m) {
    switch (m.type) {
      case "hello":
        if (m.reset) this.clear();
        // The partial is resent after hello when there is one; drop any stale one.
        this.setPartial("");
        this.backlogUntil = m.seq;
        // History is not read aloud: only lines that arrive live are announced.
        if (m.seq > (this.lastSeq ?? 0)) this.log.setAttribute("aria-live", "off");
        break;
      case "partial":
        this.setPartial(m.text);
        break;
      default:
        // Every committed event (line, edit, and any later kind) takes the channel's next
        // seq: anything at or below the last one seen was already applied.
        if (typeof m.seq !== "number" || m.type === "ack") return;
        if (this.lastSeq !== null && m.seq <= this.lastSeq) return;
        this.lastSeq = m.seq;
        if (m.type === "line") this.addLine(m);
        else if (m.type === "edit") this.applyEdit(m);
    }
    if (this.announce && (this.lastSeq ?? 0) >= this.backlogUntil) {
      this.log.setAttribute("aria-live", "polite");
    }
  }

  addLine(m) {
    const lang = langAttr(m.lang) || this.lang;
    const p = document.createElement("p");
    p.className = "line";
    p.dataset.seq = String(m.seq);
    p.lang = lang;
    p.dir = dirOf(lang);
    p.textContent = m.text;
    this.log.append(p);
    this.lines.set(m.seq, p);
    while (this.log.childElementCount > MAX_LINES) {
      const first = this.log.firstElementChild;
      this.lines.delete(Number(first.dataset.seq));
      first.remove();
    }
    this.onLine(p, m);
    this.changed(true);
  }

  applyEdit(m) {
    const p = this.lines.get(m.of);
    if (!p) return; // older than what the page holds
    p.textContent = m.text;
    p.classList.add("edited");
    p.title = t("corrected");
    // Restart the highlight even if the line was corrected a moment ago.
    p.classList.remove("flash");
    void p.offsetWidth;
    p.classList.add("flash");
    p.addEventListener("animationend", () => p.classList.remove("flash"), { once: true });
    this.onEdit(p, m);
    this.changed(false);
  }

  setPartial(text) {
    this.partial.textContent = text;
    this.partial.hidden = !text;
    this.changed(false);
  }

  changed(newLine) {
    if (this.waiting) this.waiting.hidden = this.log.childElementCount > 0 || !this.partial.hidden;
    if (!this.paused) {
      this.toBottom();
    } else if (newLine && this.jump) {
      this.unseen += 1;
      this.jump.textContent = t("jump.new", { n: this.unseen });
    }
  }

  /** Sets the pane's own words again (after a change of language). */
  relabel() {
    if (this.jump) this.jump.textContent = this.unseen ? t("jump.new", { n: this.unseen }) : t("jump");
  }

  toBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  /** Resumes following the live edge. */
  toLive() {
    this.paused = false;
    this.unseen = 0;
    if (this.jump) {
      this.jump.hidden = true;
      this.jump.textContent = t("jump");
    }
    this.toBottom();
  }

  onScroll() {
    const s = this.scroller;
    const atEdge = s.scrollHeight - s.scrollTop - s.clientHeight < LIVE_EDGE_PX;
    if (atEdge) {
      if (this.paused) this.toLive();
    } else if (!this.paused) {
      this.paused = true;
      if (this.jump) this.jump.hidden = false;
    }
  }
}

function paneDir(tag) {
  return dirOf(tag) === "rtl" ? "rtl" : "ltr";
}
