// Attendee page: follows one channel (and optionally the floor beside it), resumes with
// since= after any disconnect, notices a dead network, keeps the screen awake, remembers
// display settings, and speaks the channel's language (or the browser's).
//
// On a slow link the first caption must not wait for anything it does not need: the socket
// of the channel named in the URL (or remembered) opens at once, in parallel with the event
// list and the words of the page.

import {
  channelPath, connBadge, el, eventFromPath, floorOf, labelOf, langAttr, loadEvents, NATIVE,
  readStore, Socket, writeStore, wsUrl,
} from "./common.js";
import { Feed } from "./feed.js";
import { pick, prefetch, t, use } from "./i18n.js";
import { ListenControl } from "./listen.js";

const SETTINGS_KEY = "babelcast.settings";
const DEFAULTS = { size: 100, theme: "dark", spacing: "normal", dual: false };
const SIZE_MIN = 80;
const SIZE_MAX = 250;
const SIZE_STEP = 10;
/** How long the "sent" note under the feedback buttons stays. */
const FEEDBACK_NOTE_MS = 4000;
/** A server cut off from the others this long is left for another (behind a load balancer). */
const INTERRUPTED_RECONNECT_MS = 20000;
/** How often an event with no channel yet is looked at again. */
const EMPTY_EVENT_POLL_MS = 5000;

const $ = (id) => document.getElementById(id);
const event = eventFromPath();
const params = new URLSearchParams(location.search);
// An event protected by an attendee access code: the link carries `?code=`, kept for the tab.
const CODE_KEY = `babelcast.code.${event}`;
const accessCode = params.get("code") || sessionStorage.getItem(CODE_KEY) || "";
if (params.get("code")) sessionStorage.setItem(CODE_KEY, accessCode);
const CHANNEL_KEY = `babelcast.channel.${event}`;

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
let lastStatus = null;
let noticeKey = null;

const mainFeed = new Feed(mainPane);
const floorFeed = new Feed(floorPane, { announce: false });

const mainSocket = new Socket(() => listenUrl(mainFeed.channel, mainFeed, mainListen), {
  onMessage: (m) => {
    if (m.type === "status") {
      showStatus(m);
      mainListen.status(m);
    }
    mainFeed.handle(m);
  },
  onBinary: (b) => mainListen.packet(b),
});
const closedNotice = { 4004: "notice.channel_deleted", 4005: "notice.event_over" };
const showConn = connBadge(conn, mainSocket);
let connState = ["connecting", 0];
mainSocket.onState = (state, delay) => {
  connState = [state, delay];
  showConn(state, delay);
  if (state === "closed") {
    // The organiser deleted the channel or archived the event: say so, offer what is left.
    showNotice(closedNotice[delay] || "notice.event_over");
    refreshEvent();
    return;
  }
  if (state === "live") {
    keepAwake();
    if (noticeKey === "notice.offline" || noticeKey === "notice.channel_deleted") showNotice(null);
  } else {
    // What was being typed when the feed stopped is stale; the line it became comes on resume.
    mainFeed.setPartial("");
  }
  if (state === "offline") showNotice("notice.offline");
};
const floorSocket = new Socket(() => listenUrl(floor.id, floorFeed, floorListen), {
  onMessage: (m) => {
    if (m.type === "status") floorListen.status(m);
    floorFeed.handle(m);
  },
  onBinary: (b) => floorListen.packet(b),
  onState: (state) => {
    floorPane.dataset.state = state;
    if (state !== "live") floorFeed.setPartial("");
  },
});

// The voice of each pane's channel, one at a time.
const soundOf = (feed) => () => {
  const ch = ev && ev.channels.find((c) => c.id === feed.channel);
  return { title: ch ? nameOf(ch) : "", artist: ev ? ev.title || ev.id : "" };
};
const mainListen = new ListenControl(mainPane, { socket: mainSocket, meta: soundOf(mainFeed), onStart: () => floorListen.stop() });
const floorListen = new ListenControl(floorPane, { socket: floorSocket, meta: soundOf(floorFeed), onStart: () => mainListen.stop() });

/** Adds the access code (if any) to a URL that may already have a query. */
function withCode(url) {
  if (!accessCode) return url;
  return `${url}${url.includes("?") ? "&" : "?"}code=${encodeURIComponent(accessCode)}`;
}

function listenUrl(id, feed, sound) {
  const q = [];
  if (feed.lastSeq !== null) q.push(`since=${feed.lastSeq}`);
  // Listening: the voice comes back with the captions after a reconnect.
  if (sound.on) q.push("audio=1");
  return wsUrl(withCode(channelPath(event, id, "listen") + (q.length ? `?${q.join("&")}` : "")));
}

// ---- words ------------------------------------------------------------------------------

/** A channel's name: its label, or for a floor left unnamed, "Floor" in the page's language. */
function nameOf(ch) {
  return ch.lang === "auto" && (!ch.label || ch.label === NATIVE.auto) ? t("floor") : labelOf(ch);
}

/** The page in the channel's language, else the browser's, else English. */
async function speak(tag) {
  await use(pick(tag));
  if (conn.dataset.state !== "error") showConn(...connState);
  for (const f of [mainFeed, floorFeed]) f.relabel();
  for (const l of [mainListen, floorListen]) l.show();
  if (lastStatus) showStatus(lastStatus);
  if (noticeKey) showNotice(noticeKey, noticeVars);
  showWake();
  if (ev) {
    labelDual();
    document.title = `${nameOf(ev.channels.find((c) => c.id === channel))} · ${ev.title || ev.id} · babelcast`;
    for (const o of picker.options) o.textContent = nameOf(ev.channels.find((c) => c.id === o.value));
    if (floor) $("floor-title").textContent = nameOf(floor);
    $("main-title").textContent = nameOf(ev.channels.find((c) => c.id === channel));
  }
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
  lastStatus = s;
  showState(s.state || "live");
  // The organiser changed the event (a channel added or removed, a new title): read it again.
  if (ev && (s.rev || 0) !== (ev.rev || 0)) refreshEvent();
  // Counts are refreshed every few seconds; this page is always one of them.
  $("listeners").textContent = t("listening", { n: Math.max(1, s.listeners) });
  const waiting = mainPane.querySelector(".waiting");
  waiting.dataset.i18n = s.on_air ? "waiting.on_air" : "waiting";
  waiting.textContent = t(waiting.dataset.i18n);
  showInterrupted(!!s.interrupted);
}

let interruptedTimer = null;

/** This server lost the other servers of its cluster: say so, and if it lasts, reconnect
 * (a load balancer may send the page to a server that still has the feed). */
function showInterrupted(cut) {
  if (cut) {
    conn.dataset.state = "interrupted";
    conn.querySelector(".conn-text").textContent = t("conn.interrupted");
    conn.title = t("conn.interrupted_note");
    if (interruptedTimer === null) {
      interruptedTimer = setTimeout(() => {
        interruptedTimer = null;
        if (mainSocket.ws) mainSocket.ws.close(4000, "feed interrupted");
      }, INTERRUPTED_RECONNECT_MS);
    }
  } else {
    clearTimeout(interruptedTimer);
    interruptedTimer = null;
    conn.title = "";
    if (conn.dataset.state === "interrupted") showConn(...connState);
  }
}

/** "Not started yet" or "ended" above the captions (nothing while live). */
function showState(state) {
  const box = $("event-state");
  box.dataset.state = state;
  box.hidden = state === "live";
  if (box.hidden) return;
  const at = ev && ev.starts_at;
  const key = state === "scheduled" ? (at ? "state.scheduled_at" : "state.scheduled") : "state.ended";
  const time = at ? new Date(at).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
  $("event-state-text").textContent = t(key, { time });
  const link = $("event-state-link");
  link.hidden = state === "scheduled";
  link.href = withCode(`/e/${encodeURIComponent(event)}/transcript`);
  link.textContent = t("state.transcript");
}

let refreshing = null;
/** Reads the event again (after a change): the picker gains or loses channels in place. */
function refreshEvent() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const fresh = (await loadEvents()).find((e) => e.id === event) || null;
      if (!fresh) {
        ev = ev && { ...ev, channels: [] };
        mainSocket.stop();
        floorSocket.stop();
        showState("ended");
        return;
      }
      ev = fresh;
      fillPicker();
      if (!ev.channels.some((c) => c.id === channel)) {
        if (ev.channels.length) choose(preferredChannel());
      } else {
        follow();
      }
      if (lastStatus) showState(lastStatus.state || ev.state);
    } catch {
      // Tried again at the next status message.
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** One option per channel of the event, in its order, keeping the one chosen. */
function fillPicker() {
  const options = ev.channels.map((ch) => el("option", { value: ch.id, lang: langAttr(ch.lang) }, nameOf(ch)));
  picker.replaceChildren(...options);
  if (channel && ev.channels.some((c) => c.id === channel)) picker.value = channel;
}

let wakeKey = "wake.on";
function showWake(key = wakeKey) {
  wakeKey = key;
  $("wake").textContent = t(key);
}

async function keepAwake() {
  if (!("wakeLock" in navigator)) {
    showWake("wake.unsupported");
    return;
  }
  if (wakeLock || document.visibilityState !== "visible") return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    showWake("wake.on");
    wakeLock.addEventListener("release", () => { wakeLock = null; });
  } catch {
    showWake("wake.refused");
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
      $("feedback-sent").textContent = t(sent ? "feedback.sent" : "feedback.not_sent");
      clearTimeout(clear);
      clear = setTimeout(() => { $("feedback-sent").textContent = ""; }, FEEDBACK_NOTE_MS);
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

/** The channel asked for in the URL, else the one chosen last time (known before the events). */
function askedChannel() {
  return params.get("channel") || readStore(localStorage, CHANNEL_KEY, { id: null }).id;
}

function preferredChannel() {
  const ids = ev.channels.map((c) => c.id);
  const asked = askedChannel();
  if (asked && ids.includes(asked)) return asked;
  for (const l of navigator.languages || []) {
    const ch = ev.channels.find((c) => c.lang === l.split("-")[0]);
    if (ch) return ch.id;
  }
  return ids[0];
}

function labelDual() {
  const f = floorOf(ev, channel);
  const named = f && f.id !== channel && nameOf(f) !== t("floor");
  $("dual-label").textContent = named ? t("dual.named", { name: nameOf(f) }) : t("dual");
}

/** Opens the main socket on `id` (before the event list is known, or on a change). */
function listenTo(id) {
  if (mainFeed.channel === id) return;
  mainSocket.stop();
  mainFeed.clear();
  mainFeed.channel = id;
  mainSocket.start();
}

/** (Re)connects the panes for the current channel and settings. */
function follow() {
  const ch = ev.channels.find((c) => c.id === channel);
  const f = floorOf(ev, channel);
  const dual = !!settings.dual && f !== null && f.id !== channel;
  $("dual").disabled = !f || f.id === channel;
  // Feedback goes to an interpreter: a channel with a source has one.
  $("feedback-box").hidden = !(ch.interpreted ?? ch.source);
  labelDual();
  $("panes").classList.toggle("dual", dual);
  const title = $("main-title");
  title.hidden = !dual;
  title.textContent = nameOf(ch);
  title.lang = langAttr(ch.lang);
  listenTo(channel);
  mainFeed.setLang(ch.lang);
  floorPane.hidden = !dual;
  if (!dual) {
    floorListen.stop();
    floorSocket.stop();
    floorFeed.channel = null;
    floor = null;
  } else if (floorFeed.channel !== f.id) {
    floorSocket.stop();
    floorFeed.clear();
    floor = f;
    floorFeed.channel = f.id;
    floorFeed.setLang(f.lang);
    $("floor-title").textContent = nameOf(f);
    $("floor-title").lang = langAttr(f.lang);
    floorSocket.start();
  }
}

function choose(id) {
  channel = id;
  picker.value = id;
  const u = new URL(location.href);
  u.searchParams.set("channel", id);
  history.replaceState(null, "", u);
  writeStore(localStorage, CHANNEL_KEY, { id });
  const ch = ev.channels.find((c) => c.id === id);
  document.title = `${nameOf(ch)} · ${ev.title || ev.id} · babelcast`;
  transcriptLinks();
  follow();
  speak(ch.lang);
}

let noticeVars = {};
/** Shows the notice `key` (null hides it). */
function showNotice(key, vars = {}) {
  noticeKey = key;
  noticeVars = vars;
  notice.hidden = !key;
  if (!key) return;
  notice.replaceChildren(t(key, vars));
  if (key === "error.no_event") notice.append(" ", el("a", { href: "/" }, t("error.all_events")));
}

async function start() {
  applySettings();
  wireSettings();
  wireFeedback();
  showWake();
  // In parallel: the socket of the channel we most likely show, the words of its language
  // (ids are often language tags), and the event list.
  const asked = askedChannel();
  prefetch(pick(asked));
  if (asked) listenTo(asked);
  for (let attempt = 0; ; attempt++) {
    try {
      const events = await loadEvents();
      ev = events.find((e) => e.id === event) || null;
      break;
    } catch {
      showNotice("error.unreachable");
      await new Promise((r) => setTimeout(r, Math.min(10000, 500 * 2 ** attempt)));
    }
  }
  if (!ev) {
    mainSocket.stop();
    await use(pick());
    conn.dataset.state = "error";
    conn.querySelector(".conn-text").textContent = t("conn.no_event");
    showNotice("error.no_event", { event });
    return;
  }
  showNotice(null);
  $("event-name").textContent = ev.title || ev.id;
  picker.addEventListener("change", () => choose(picker.value));
  // An event set up in the dashboard may have no channel yet: look again until it has one.
  while (!ev.channels.length) {
    await use(pick());
    showState(ev.state);
    showNotice("notice.no_channels");
    await new Promise((r) => setTimeout(r, EMPTY_EVENT_POLL_MS));
    ev = (await loadEvents().catch(() => [ev])).find((e) => e.id === event) || ev;
  }
  showNotice(null);
  fillPicker();
  showState(ev.state);
  choose(preferredChannel());
}

start();
