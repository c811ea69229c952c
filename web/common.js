// Shared by every babelcast page: DOM building, the events API, language facts, and a
// WebSocket that reconnects by itself with jittered exponential backoff.

/** Languages written right to left. */
export const RTL = new Set(["ar", "he", "fa", "ur"]);

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
/** Longest delay between retries, in ms. */
const RETRY_MAX_MS = 15000;
/** Close code: the listener fell too far behind; reconnect at once with since=. */
export const CLOSE_BEHIND = 4001;
/** Close code: the server is restarting; reconnect with since=. */
export const CLOSE_GOING_AWAY = 1001;

/**
 * A WebSocket that reconnects until stopped. `url()` is called for every attempt, so it can
 * carry `since=` the last seq seen. States: connecting, live (after the server's hello),
 * reconnecting (waiting `delay` ms), offline (the device has no network).
 */
export class Socket {
  constructor(url, { onMessage = () => {}, onState = () => {} } = {}) {
    this.url = url;
    this.onMessage = onMessage;
    this.onState = onState;
    this.ws = null;
    this.timer = null;
    this.attempt = 0;
    this.stopped = true;
    /** Successful connections (hello received): 1 at first, +1 per reconnect. */
    this.connections = 0;
    this.retryNow = () => {
      if (!this.stopped && this.timer !== null) this.open();
    };
    this.onVisible = () => {
      if (document.visibilityState === "visible") this.retryNow();
    };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    addEventListener("online", this.retryNow);
    document.addEventListener("visibilitychange", this.onVisible);
    this.open();
  }

  stop() {
    this.stopped = true;
    removeEventListener("online", this.retryNow);
    document.removeEventListener("visibilitychange", this.onVisible);
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = ws.onmessage = ws.onerror = null;
      ws.close(1000);
    }
  }

  /** Sends a message if connected; returns whether it was sent. */
  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  get live() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  open() {
    clearTimeout(this.timer);
    this.timer = null;
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.retry(0);
      return;
    }
    this.ws = ws;
    this.onState("connecting");
    ws.onmessage = (e) => {
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
      this.ws = null;
      if (!this.stopped) this.retry(e.code);
    };
  }

  retry(code) {
    let delay;
    if (code === CLOSE_BEHIND) {
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

/** Keeps a connection-state badge (`.conn` with a `.conn-text`) up to date. */
export function connBadge(node, socket) {
  const text = node.querySelector(".conn-text");
  let countdown = null;
  return (state, delay) => {
    clearInterval(countdown);
    node.dataset.state = state;
    node.dataset.connections = String(socket.connections);
    const labels = { connecting: "Connecting…", live: "Live", offline: "Offline" };
    if (state === "reconnecting") {
      const until = Date.now() + delay;
      const tick = () => {
        const s = Math.ceil((until - Date.now()) / 1000);
        text.textContent = s > 1 ? `Reconnecting in ${s} s` : "Reconnecting…";
      };
      tick();
      countdown = setInterval(tick, 1000);
    } else {
      text.textContent = labels[state] || state;
    }
  };
}
