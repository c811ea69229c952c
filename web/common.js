// Shared by every babelcast page: DOM building, the events API, language facts, and a
// WebSocket that reconnects by itself with jittered exponential backoff and notices a dead
// network (the browser's `offline` event, or silence from the server).

import { RTL, t } from "./i18n.js";

export { RTL };

/** Each language named in itself (the server's labels take precedence). */
export const NATIVE = {
  auto: "Floor", en: "English", zh: "中文", fr: "Français", es: "Español", ar: "العربية",
  ru: "Русский", de: "Deutsch", it: "Italiano", pt: "Português", ja: "日本語", ko: "한국어",
  hi: "हिन्दी", tr: "Türkçe", pl: "Polski", nl: "Nederlands", uk: "Українська",
};

/** The label of a channel, in its own language. */
export function labelOf(ch) {
  return ch.label || NATIVE[ch.lang] || ch.id;
}

/** A language tag fit for a `lang` attribute ("" = unknown, e.g. a mixed floor). */
export function langAttr(tag) {
  return tag && tag !== "auto" && tag !== "und" ? tag : "";
}

/** `dir` for text in `tag`. */
export function dirOf(tag) {
  return RTL.has(tag) ? "rtl" : "auto";
}

/**
 * Creates an element. `attrs` are set as attributes (`class` included); children are nodes
 * or strings, and strings always become text nodes, never HTML.
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) e.append(typeof c === "string" ? document.createTextNode(c) : c);
  return e;
}

/** The `{event}` segment of `/e/{event}` or `/booth/{event}`. */
export function eventFromPath() {
  return decodeURIComponent(location.pathname.split("/")[2] || "");
}

const enc = encodeURIComponent;

/** `/v1/events/{event}/channels/{channel}/{what}`. */
export function channelPath(event, channel, what) {
  return `/v1/events/${enc(event)}/channels/${enc(channel)}/${what}`;
}

/** An absolute ws:// or wss:// URL on this server. */
export function wsUrl(path) {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}

/** Every event with its channels and live counts. */
export async function loadEvents() {
  const res = await fetch("/v1/events", { cache: "no-store" });
  if (!res.ok) throw new Error(`GET /v1/events: ${res.status}`);
  return (await res.json()).events;
}

/**
 * The floor of a channel: the root of its `source` chain, or else the event's channel named
 * `floor` (or declared `auto`). Null when there is none.
 */
export function floorOf(ev, channelId) {
  const byId = new Map(ev.channels.map((c) => [c.id, c]));
  let ch = byId.get(channelId);
  const seen = new Set();
  while (ch && ch.source && byId.has(ch.source) && !seen.has(ch.id)) {
    seen.add(ch.id);
    ch = byId.get(ch.source);
  }
  if (ch && ch.id !== channelId) return ch;
  return ev.channels.find((c) => c.id === "floor") || ev.channels.find((c) => c.lang === "auto") || null;
}

/** Reads a JSON value from a Storage, falling back on any problem (private mode, bad JSON). */
export function readStore(storage, key, fallback) {
  try {
    const v = storage.getItem(key);
    return v === null ? fallback : { ...fallback, ...JSON.parse(v) };
  } catch {
    return fallback;
  }
}

export function writeStore(storage, key, value) {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the setting lasts for this visit only.
  }
}

/** First retry delay after a failure, in ms. */
const RETRY_MIN_MS = 500;
/** Longest delay between retries, in ms (also how often a device that says it is offline is
 * tried anyway, in case it is wrong). */
const RETRY_MAX_MS = 15000;
/**
 * A connection that hears nothing for this long is dead, even if the browser does not know:
 * the server sends something at least every 6 s (its heartbeat on a quiet channel,
 * docs/protocol.md#heartbeat), and a phone whose Wi-Fi dropped sees no close, only silence.
 */
export const DEAD_AFTER_MS = 10000;
/** How often a connection checks that it still hears the server. */
const WATCH_EVERY_MS = 1000;
/** Close code: the listener fell too far behind; reconnect at once with since=. */
export const CLOSE_BEHIND = 4001;
/** Close code: the server is restarting; reconnect with since=. */
export const CLOSE_GOING_AWAY = 1001;
/**
 * Close codes of an organiser's decision, after which reconnecting is pointless: the
 * publisher's credential was revoked (4003), the channel deleted (4004), the event is over
 * (4005). The socket stops and reports the state `closed` with the code and the reason.
 */
export const FINAL_CLOSES = [4003, 4004, 4005];
/** Close code: the organiser changed the channel; reconnect at once (the new hello says how). */
export const CLOSE_CHANNEL_CHANGED = 4006;
/**
 * Bytes a socket may have waiting to go out before binary frames (sound) are dropped instead
 * of queued: old sound is worthless (a second of 32 kbit/s voice).
 */
const SEND_BACKLOG_BYTES = 4096;

/**
 * A WebSocket that reconnects until stopped. `url()` is called for every attempt, so it can
 * carry `since=` the last seq seen. States: connecting, live (after the server's hello),
 * reconnecting (waiting `delay` ms), offline (the device has no network: the connection is
 * dropped at the browser's `offline` event and tried again at `online`).
 */
export class Socket {
  constructor(url, { onMessage = () => {}, onState = () => {}, onBinary = () => {} } = {}) {
    this.url = url;
    this.onMessage = onMessage;
    this.onState = onState;
    /** Binary frames (sound: docs/protocol.md#sound), as ArrayBuffers. */
    this.onBinary = onBinary;
    this.ws = null;
    this.timer = null;
    this.watch = null;
    this.heard = 0;
    this.attempt = 0;
    this.stopped = true;
    /** Successful connections (hello received): 1 at first, +1 per reconnect. */
    this.connections = 0;
    this.retryNow = () => {
      if (!this.stopped && this.ws === null) this.open();
    };
    this.onVisible = () => {
      if (document.visibilityState === "visible") this.retryNow();
    };
    this.onOffline = () => {
      if (!this.stopped) this.drop();
    };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    addEventListener("online", this.retryNow);
    addEventListener("offline", this.onOffline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.open();
  }

  stop() {
    this.stopped = true;
    removeEventListener("online", this.retryNow);
    removeEventListener("offline", this.onOffline);
    document.removeEventListener("visibilitychange", this.onVisible);
    clearTimeout(this.timer);
    this.timer = null;
    this.detach(1000);
  }

  /** Sends a message if connected; returns whether it was sent. */
  send(msg) {
    if (!this.live) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** Sends a binary frame if connected and not backed up; returns whether it was sent. */
  sendBinary(bytes) {
    if (!this.live || this.ws.bufferedAmount > SEND_BACKLOG_BYTES) return false;
    this.ws.send(bytes);
    return true;
  }

  get live() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  open() {
    clearTimeout(this.timer);
    this.timer = null;
    if (navigator.onLine === false) {
      this.retry(0);
      return;
    }
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.retry(0);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.heard = Date.now();
    clearInterval(this.watch);
    // Connecting or connected, silence this long means the network is gone.
    this.watch = setInterval(() => {
      if (Date.now() - this.heard > DEAD_AFTER_MS) this.drop();
    }, WATCH_EVERY_MS);
    this.onState("connecting");
    ws.onmessage = (e) => {
      this.heard = Date.now();
      if (typeof e.data !== "string") {
        this.onBinary(e.data);
        return;
      }
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      if (m.type === "hello") {
        this.attempt = 0;
        this.connections += 1;
        this.onState("live");
      }
      this.onMessage(m);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.detach();
      if (this.stopped) return;
      if (FINAL_CLOSES.includes(e.code)) {
        this.stop();
        this.onState("closed", e.code, e.reason);
        return;
      }
      this.retry(e.code);
    };
  }

  /** Forgets the current connection (closing it if it is still open). */
  detach(code) {
    clearInterval(this.watch);
    this.watch = null;
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onclose = ws.onmessage = ws.onerror = null;
    if (code !== undefined || ws.readyState <= WebSocket.OPEN) {
      try {
        ws.close(code ?? 1000);
      } catch {
        // already closing
      }
    }
  }

  /** The connection is dead (silence, or the device went offline): start over. */
  drop() {
    this.detach();
    clearTimeout(this.timer);
    this.retry(0);
  }

  retry(code) {
    let delay;
    if (navigator.onLine === false) {
      // Back at the `online` event; tried now and then in case the browser is wrong.
      delay = RETRY_MAX_MS;
    } else if (code === CLOSE_BEHIND || code === CLOSE_CHANNEL_CHANGED) {
      // Told to resume at once; a little jitter still spreads a crowd.
      delay = 100 + Math.random() * 400;
    } else {
      // Exponential backoff with jitter in [base/2, base): after a restart (1001) a thousand
      // phones come back spread over time instead of all in the same millisecond.
      const base = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.attempt);
      delay = base / 2 + (Math.random() * base) / 2;
      this.attempt += 1;
    }
    this.timer = setTimeout(() => this.open(), delay);
    this.onState(navigator.onLine === false ? "offline" : "reconnecting", delay);
  }
}

/**
 * Keeps a connection-state badge (`.conn` with a `.conn-text`, and an `aria-hidden`
 * `.conn-wait` for the countdown) up to date. The words a screen reader hears change with the
 * state only, never every second.
 */
export function connBadge(node, socket) {
  const text = node.querySelector(".conn-text");
  const wait = node.querySelector(".conn-wait");
  let countdown = null;
  return (state, delay) => {
    clearInterval(countdown);
    node.dataset.state = state;
    node.dataset.connections = String(socket.connections);
    const keys = { connecting: "conn.connecting", live: "conn.live", offline: "conn.offline", reconnecting: "conn.reconnecting", closed: "conn.closed" };
    text.textContent = keys[state] ? t(keys[state]) : state;
    if (wait) wait.textContent = "";
    if (state === "reconnecting" && wait) {
      const until = Date.now() + delay;
      const tick = () => {
        const s = Math.ceil((until - Date.now()) / 1000);
        wait.textContent = s > 1 ? t("conn.in_seconds", { s }) : "";
      };
      tick();
      countdown = setInterval(tick, 1000);
    }
  };
}
