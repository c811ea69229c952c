// Hall screen and livestream overlay: one to three channels stacked (the first on top), the
// last lines of each in very large type, no controls. Everything is set in the URL:
//   /e/{event}/display?ch=zh,en&lines=2&bg=black|transparent|green&size=100[&code=…]
// Each channel resumes with since= after any disconnect, like the attendee page; the line in
// progress is the last row and rolls up when it is committed.

import { channelPath, dirOf, eventFromPath, langAttr, loadEvents, Socket, wsUrl } from "./common.js";
import { t, use } from "./i18n.js";

/** Channels one screen shows at most. */
const MAX_CHANNELS = 3;
/** Rows per channel: default and bounds. */
const LINES_DEFAULT = 2;
const LINES_MAX = 8;
/** Text size in percent of the automatic size: bounds. */
const SIZE_MIN = 30;
const SIZE_MAX = 300;
const BACKGROUNDS = ["black", "transparent", "green"];

const params = new URLSearchParams(location.search);
const event = eventFromPath();
const code = params.get("code") || "";
const rows = Math.min(LINES_MAX, Math.max(1, Number.parseInt(params.get("lines"), 10) || LINES_DEFAULT));
const size = Math.min(SIZE_MAX, Math.max(SIZE_MIN, Number.parseInt(params.get("size"), 10) || 100));
const root = document.documentElement;
root.dataset.bg = BACKGROUNDS.includes(params.get("bg")) ? params.get("bg") : "black";
root.style.setProperty("--scale", String(size / 100));
root.style.setProperty("--lines", String(rows));
const stage = document.getElementById("stage");

/** One channel's block: its last committed lines and the line in progress. */
class Block {
  constructor(id) {
    this.id = id;
    this.lines = []; // { seq, text, lang }, oldest first, at most `rows`
    this.partial = "";
    this.lastSeq = null;
    this.el = document.createElement("section");
    this.el.className = "block";
    this.el.dataset.channel = id;
    stage.append(this.el);
    this.socket = new Socket(() => {
      let q = this.lastSeq === null ? "" : `since=${this.lastSeq}`;
      if (code) q += `${q ? "&" : ""}code=${encodeURIComponent(code)}`;
      return wsUrl(channelPath(event, id, "listen") + (q ? `?${q}` : ""));
    }, {
      onMessage: (m) => this.handle(m),
      onState: (state) => {
        this.el.dataset.state = state;
        // A stale line in progress goes; the line it became comes on resume.
        if (state !== "live") this.setPartial("");
        showState();
      },
    });
  }

  setLang(tag) {
    this.el.lang = langAttr(tag);
    this.el.dir = dirOf(tag) === "rtl" ? "rtl" : "ltr";
  }

  handle(m) {
    if (m.type === "hello") {
      if (m.reset) this.lines = [];
      this.setLang(m.lang);
      this.partial = "";
    } else if (m.type === "partial") {
      this.partial = m.text;
    } else if (typeof m.seq === "number" && m.type !== "ack") {
      if (this.lastSeq !== null && m.seq <= this.lastSeq) return;
      this.lastSeq = m.seq;
      if (m.type === "line") {
        this.lines.push({ seq: m.seq, text: m.text, lang: langAttr(m.lang) });
        this.lines.splice(0, Math.max(0, this.lines.length - rows));
      } else if (m.type === "edit") {
        const l = this.lines.find((x) => x.seq === m.of);
        if (l) l.text = m.text;
      }
    } else {
      return;
    }
    this.render();
  }

  setPartial(text) {
    if (this.partial === text) return;
    this.partial = text;
    this.render();
  }

  /** The last `rows` rows: committed lines, then the line in progress. */
  render() {
    const keep = this.partial ? rows - 1 : rows;
    const shown = keep > 0 ? this.lines.slice(-keep) : [];
    const out = shown.map((l) => {
      const p = document.createElement("p");
      p.className = "row";
      if (l.lang) p.lang = l.lang;
      p.dataset.seq = String(l.seq);
      p.textContent = l.text;
      return p;
    });
    if (this.partial) {
      const p = document.createElement("p");
      p.className = "row partial";
      p.textContent = this.partial;
      out.push(p);
    }
    this.el.replaceChildren(...out);
  }
}

let blocks = [];

function showState() {
  document.getElementById("state").hidden = blocks.every((b) => b.el.dataset.state === "live");
}

function problem(key, vars) {
  for (const b of blocks) {
    b.socket.stop();
    b.el.remove();
  }
  blocks = [];
  const p = document.getElementById("problem");
  p.textContent = t(key, vars);
  p.hidden = false;
}

function show(ids) {
  root.style.setProperty("--rows", String(ids.length * rows));
  blocks = ids.map((id) => new Block(id));
  for (const b of blocks) b.socket.start();
}

async function start() {
  use("en");
  // The channels named in the URL connect at once, before the event list arrives.
  const asked = (params.get("ch") || params.get("channel") || "").split(",")
    .map((s) => s.trim()).filter(Boolean).slice(0, MAX_CHANNELS);
  if (asked.length) show(asked);
  let ev = null;
  try {
    ev = (await loadEvents()).find((e) => e.id === event) || null;
  } catch {
    return; // the sockets retry by themselves
  }
  if (!ev) return problem("display.no_event", { event });
  if (!asked.length) return show(ev.channels.slice(0, 1).map((c) => c.id));
  const unknown = asked.find((id) => !ev.channels.some((c) => c.id === id));
  if (unknown) return problem("display.no_channel", { channel: unknown, event });
  for (const b of blocks) b.setLang(ev.channels.find((c) => c.id === b.id).lang);
}

start();
