// Attendee page: follows one channel (and optionally the floor beside it), resumes with
// since= after any disconnect, keeps the screen awake, remembers display settings.

import {
  channelPath, connBadge, el, eventFromPath, floorOf, labelOf, langAttr, loadEvents, readStore,
  Socket, writeStore, wsUrl,
} from "./common.js";
import { Feed } from "./feed.js";

const SETTINGS_KEY = "babelcast.settings";
const DEFAULTS = { size: 100, theme: "dark", spacing: "normal", dual: false };
const SIZE_MIN = 80;
const SIZE_MAX = 250;
const SIZE_STEP = 10;

const $ = (id) => document.getElementById(id);
const event = eventFromPath();
const params = new URLSearchParams(location.search);
// An event protected by an attendee access code: the link carries `?code=`, kept for the tab.
const CODE_KEY = `babelcast.code.${event}`;
const accessCode = params.get("code") || sessionStorage.getItem(CODE_KEY) || "";
if (params.get("code")) sessionStorage.setItem(CODE_KEY, accessCode);

const root = document.documentElement;
const picker = $("channel");
const conn = $("conn");
const notice = $("notice");
const mainPane = $("pane-main");
const floorPane = $("pane-floor");

let settings = readStore(localStorage, SETTINGS_KEY, DEFAULTS);
let ev = null;
let channel = null;
let floor = null;
let wakeLock = null;

const mainFeed = new Feed(mainPane);
const floorFeed = new Feed(floorPane, { announce: false });

const mainSocket = new Socket(() => listenUrl(channel, mainFeed), {
  onMessage: (m) => {
    if (m.type === "status") showStatus(m);
    mainFeed.handle(m);
  },
});
const showConn = connBadge(conn, mainSocket);
mainSocket.onState = (state, delay) => {
  showConn(state, delay);
  if (state === "live") keepAwake();
};
const floorSocket = new Socket(() => listenUrl(floor.id, floorFeed), {
  onMessage: (m) => floorFeed.handle(m),
  onState: (state) => { floorPane.dataset.state = state; },
});

/** Adds the access code (if any) to a URL that may already have a query. */
function withCode(url) {
  if (!accessCode) return url;
  return `${url}${url.includes("?") ? "&" : "?"}code=${encodeURIComponent(accessCode)}`;
}

function listenUrl(id, feed) {
  const since = feed.lastSeq === null ? "" : `?since=${feed.lastSeq}`;
  return wsUrl(withCode(channelPath(event, id, "listen") + since));
}

// ---- settings -------------------------------------------------------------------------

function applySettings() {
  const size = Math.min(SIZE_MAX, Math.max(SIZE_MIN, Number(settings.size) || 100));
  settings.size = size;
  root.dataset.theme = ["dark", "light", "contrast"].includes(settings.theme) ? settings.theme : "dark";
  root.dataset.spacing = ["compact", "normal", "relaxed"].includes(settings.spacing) ? settings.spacing : "normal";
  // CSSOM, not a style attribute: allowed by the page's style-src 'self'.
  root.style.setProperty("--scale", String(size / 100));
  $("size").value = String(size);
  $("size-out").textContent = `${size}%`;
  for (const r of document.querySelectorAll("input[name=theme]")) r.checked = r.value === root.dataset.theme;
  for (const r of document.querySelectorAll("input[name=spacing]")) r.checked = r.value === root.dataset.spacing;
  $("dual").checked = !!settings.dual;
  for (const f of [mainFeed, floorFeed]) if (!f.paused) f.toBottom();
}

function save(change) {
  settings = { ...settings, ...change };
  writeStore(localStorage, SETTINGS_KEY, settings);
  applySettings();
}

function wireSettings() {
  const btn = $("settings-btn");
  const sheet = $("settings");
  const toggle = (open) => {
    sheet.hidden = !open;
    btn.setAttribute("aria-expanded", String(open));
    if (open) $("size").focus();
    else btn.focus();
  };
  btn.addEventListener("click", () => toggle(sheet.hidden));
  $("settings-close").addEventListener("click", () => toggle(false));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !sheet.hidden) toggle(false);
  });
  $("size").addEventListener("input", (e) => save({ size: Number(e.target.value) }));
  $("smaller").addEventListener("click", () => save({ size: settings.size - SIZE_STEP }));
  $("larger").addEventListener("click", () => save({ size: settings.size + SIZE_STEP }));
  for (const r of document.querySelectorAll("input[name=theme]")) {
    r.addEventListener("change", () => save({ theme: r.value }));
  }
  for (const r of document.querySelectorAll("input[name=spacing]")) {
    r.addEventListener("change", () => save({ spacing: r.value }));
  }
  $("dual").addEventListener("change", (e) => {
    save({ dual: e.target.checked });
    follow();
  });
}

// ---- status, wake lock, transcript ----------------------------------------------------

function showStatus(s) {
  // Counts are refreshed every few seconds; this page is always one of them.
  $("listeners").textContent = `${Math.max(1, s.listeners)} listening`;
  mainPane.querySelector(".waiting").textContent = s.on_air
    ? "On air — captions will appear here."
    : "Waiting for captions…";
}

async function keepAwake() {
  const label = $("wake");
  if (!("wakeLock" in navigator)) {
    label.textContent = "This browser may let the screen sleep.";
    return;
  }
  if (wakeLock || document.visibilityState !== "visible") return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    label.textContent = "Screen stays on while captions are live.";
    wakeLock.addEventListener("release", () => { wakeLock = null; });
  } catch {
    label.textContent = "The screen may sleep (wake lock refused).";
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && mainSocket.live) keepAwake();
});

/** Anonymous audience feedback for the booth, over the listener socket. */
function wireFeedback() {
  let clear = null;
  for (const b of document.querySelectorAll("button[data-feedback]")) {
    b.addEventListener("click", () => {
      const sent = mainSocket.send({ type: "feedback", kind: b.dataset.feedback });
      $("feedback-sent").textContent = sent ? "Sent anonymously. Thank you." : "Not connected; try again in a moment.";
      clearTimeout(clear);
      clear = setTimeout(() => { $("feedback-sent").textContent = ""; }, 4000);
    });
  }
}

function transcriptLinks() {
  for (const a of document.querySelectorAll("a[data-format]")) {
    const f = a.dataset.format;
    a.href = withCode(`${channelPath(event, channel, "transcript")}?format=${f}`);
    a.setAttribute("download", `${event}-${channel}.${f}`);
  }
}

// ---- channels ---------------------------------------------------------------------------

function preferredChannel() {
  const ids = ev.channels.map((c) => c.id);
  const asked = params.get("channel");
  if (asked && ids.includes(asked)) return asked;
  const remembered = readStore(localStorage, `babelcast.channel.${event}`, { id: null }).id;
  if (remembered && ids.includes(remembered)) return remembered;
  for (const l of navigator.languages || []) {
    const ch = ev.channels.find((c) => c.lang === l.split("-")[0]);
    if (ch) return ch.id;
  }
  return ids[0];
}

/** (Re)connects the panes for the current channel and settings. */
function follow() {
  const ch = ev.channels.find((c) => c.id === channel);
  const f = floorOf(ev, channel);
  const dual = !!settings.dual && f !== null && f.id !== channel;
  $("dual").disabled = !f || f.id === channel;
  // Feedback goes to an interpreter: a channel with a source has one.
  $("feedback-box").hidden = !ch.source;
  $("dual-label").textContent = f && f.id !== channel ? `Show ${labelOf(f)} beside` : "Show the floor beside";
  document.getElementById("panes").classList.toggle("dual", dual);
  mainPane.querySelector(".pane-title").hidden = !dual;
  mainPane.querySelector(".pane-title").textContent = labelOf(ch);
  mainPane.querySelector(".pane-title").lang = langAttr(ch.lang);
  if (mainFeed.channel !== channel) {
    mainSocket.stop();
    mainFeed.clear();
    mainFeed.channel = channel;
    mainFeed.setLang(ch.lang);
    mainSocket.start();
  }
  floorPane.hidden = !dual;
  if (!dual) {
    floorSocket.stop();
    floorFeed.channel = null;
    floor = null;
  } else if (floorFeed.channel !== f.id) {
    floorSocket.stop();
    floorFeed.clear();
    floor = f;
    floorFeed.channel = f.id;
    floorFeed.setLang(f.lang);
    floorPane.querySelector(".pane-title").textContent = labelOf(f);
    floorSocket.start();
  }
}

function choose(id) {
  channel = id;
  picker.value = id;
  const u = new URL(location.href);
  u.searchParams.set("channel", id);
  history.replaceState(null, "", u);
  writeStore(localStorage, `babelcast.channel.${event}`, { id });
  const ch = ev.channels.find((c) => c.id === id);
  document.title = `${labelOf(ch)} · ${ev.title || ev.id} · babelcast`;
  transcriptLinks();
  follow();
}

function showNotice(text) {
  notice.textContent = text;
  notice.hidden = !text;
}

async function start() {
  applySettings();
  wireSettings();
  wireFeedback();
  for (let attempt = 0; ; attempt++) {
    try {
      const events = await loadEvents();
      ev = events.find((e) => e.id === event) || null;
      break;
    } catch {
      showNotice("Cannot reach the caption server; retrying…");
      await new Promise((r) => setTimeout(r, Math.min(10000, 500 * 2 ** attempt)));
    }
  }
  if (!ev) {
    conn.dataset.state = "error";
    conn.querySelector(".conn-text").textContent = "No such event";
    showNotice(`There is no event “${event}”. `);
    notice.append(el("a", { href: "/" }, "See all events"));
    return;
  }
  showNotice("");
  for (const ch of ev.channels) {
    picker.append(el("option", { value: ch.id, lang: langAttr(ch.lang) }, labelOf(ch)));
  }
  picker.addEventListener("change", () => choose(picker.value));
  choose(preferredChannel());
}

start();
