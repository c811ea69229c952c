// Booth console: an interpreter publishes into one channel. Typing streams partials
// (throttled), Enter commits a final with a client id (resent after a reconnect until acked:
// the server keeps finals idempotent by id), a previous line can be corrected in place, and the
// source channel's live captions run beside the input.

import {
  channelPath, connBadge, dirOf, el, eventFromPath, labelOf, langAttr, loadEvents, NATIVE,
  readStore, Socket, writeStore, wsUrl,
} from "./common.js";
import { Feed } from "./feed.js";

/** Least time between two partials sent while typing. */
const PARTIAL_EVERY_MS = 150;
/** A final not acked after this long is sent again (same id, so never stored twice). */
const RESEND_AFTER_MS = 5000;

const $ = (id) => document.getElementById(id);
const event = eventFromPath();
const SESSION_KEY = `babelcast.booth.${event}`;
const input = $("input");
const list = $("lines");
const ownScroller = $("own-scroller");

let ev = null;
let me = null; // { channel, token, name }
let ch = null;
let publisherId = null;
let onAirNow = false;
let partnerOnAir = false;
let lastLanguageAlert = null;
/** Lines by seq (committed, from acks or from the channel itself). */
const bySeq = new Map();
/** Finals and edits sent but not yet acked, oldest first. */
let pending = [];
let counter = 0;
const sessionTag = Math.random().toString(36).slice(2, 8);
let editing = null; // { li, seq, draft }
let partialTimer = null;
let partialDirty = false;
let lastPartial = "";

const sourceFeed = new Feed($("pane-source"), { announce: false });
const pub = new Socket(
  () => wsUrl(`${channelPath(event, me.channel, "publish")}?token=${encodeURIComponent(me.token)}`
    + (me.name ? `&name=${encodeURIComponent(me.name)}` : "")),
  { onMessage: onPublisherMessage },
);
const badge = connBadge($("conn"), pub);
pub.onState = (state, delay) => {
  badge(state, delay);
  if (state === "live") resendPending();
  if (state === "reconnecting") checkToken();
};
// A monitor: with the token and monitor=1 this console is not counted among the listeners.
const own = new Socket(
  () => wsUrl(`${channelPath(event, me.channel, "listen")}?monitor=1&token=${encodeURIComponent(me.token)}`
    + (own.seenHello ? `&since=${own.lastSeq}` : "")),
  { onMessage: onOwnMessage },
);
own.lastSeq = 0;
own.seenHello = false;
const source = new Socket(() => {
  const since = sourceFeed.lastSeq === null ? "" : `?since=${sourceFeed.lastSeq}`;
  return wsUrl(channelPath(event, ch.source, "listen") + since);
}, { onMessage: (m) => sourceFeed.handle(m) });

// ---- sign in --------------------------------------------------------------------------

/** Asks the server whether the token may publish (426 = yes, it just wants a WebSocket). */
async function tokenStatus(channel, token) {
  try {
    const res = await fetch(channelPath(event, channel, "publish"), {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    return res.status;
  } catch {
    return 0;
  }
}

async function checkToken() {
  if (!me) return;
  if ((await tokenStatus(me.channel, me.token)) === 401) {
    signOut("This token can no longer publish to the channel; sign in again.");
  }
}

async function signIn(cred, quiet) {
  const err = $("signin-error");
  const status = await tokenStatus(cred.channel, cred.token);
  if (status === 401 || status === 404 || status === 0) {
    if (!quiet) {
      err.textContent = status === 401
        ? "This token cannot publish to that channel."
        : status === 404 ? "Unknown channel." : "Cannot reach the server.";
      err.hidden = false;
    }
    return;
  }
  err.hidden = true;
  me = cred;
  writeStore(sessionStorage, SESSION_KEY, cred);
  enterConsole();
}

function signOut(message) {
  for (const s of [pub, own, source]) s.stop();
  me = null;
  try {
    sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // nothing stored
  }
  $("console").hidden = true;
  $("signin").hidden = false;
  $("signout").hidden = true;
  $("onair").hidden = $("listeners").hidden = true;
  $("conn").dataset.state = "idle";
  $("conn").querySelector(".conn-text").textContent = "Signed out";
  const err = $("signin-error");
  err.textContent = message || "";
  err.hidden = !message;
  $("token").value = "";
  $("token").focus();
}

function enterConsole() {
  ch = ev.channels.find((c) => c.id === me.channel);
  $("signin").hidden = true;
  $("console").hidden = false;
  $("signout").hidden = false;
  $("onair").hidden = $("listeners").hidden = false;
  $("title").textContent = `${labelOf(ch)} booth`;
  document.title = `${labelOf(ch)} booth · ${ev.title || ev.id}`;
  $("own-title").textContent = `${labelOf(ch)} — activate a line (or press ↑) to correct it`;
  input.lang = langAttr(ch.lang);
  input.dir = dirOf(ch.lang);
  list.lang = langAttr(ch.lang);
  list.replaceChildren();
  bySeq.clear();
  pending = [];
  own.lastSeq = 0;
  own.seenHello = false;
  pub.start();
  own.start();
  const src = ch.source && ev.channels.find((c) => c.id === ch.source);
  $("console").classList.toggle("no-source", !src);
  $("pane-source").hidden = !src;
  if (src) {
    $("pane-source").querySelector(".pane-title").textContent = `Source: ${labelOf(src)}`;
    sourceFeed.clear();
    sourceFeed.setLang(src.lang);
    source.start();
  }
  setEditing(null);
  input.focus();
}

// ---- publishing ---------------------------------------------------------------------------

function sendPartialNow() {
  partialDirty = false;
  const text = input.value;
  if (text === lastPartial) return;
  if (pub.send({ type: "partial", text })) lastPartial = text;
}

/** Throttled partials: the first keystroke goes at once, then at most one per interval. */
function typed() {
  if (editing) return;
  partialDirty = true;
  if (partialTimer !== null) return;
  sendPartialNow();
  partialTimer = setTimeout(function again() {
    partialTimer = null;
    if (partialDirty && !editing) {
      sendPartialNow();
      partialTimer = setTimeout(again, PARTIAL_EVERY_MS);
    }
  }, PARTIAL_EVERY_MS);
}

function cancelPartial() {
  clearTimeout(partialTimer);
  partialTimer = null;
  partialDirty = false;
}

function commit() {
  const text = input.value.trim();
  if (editing) {
    const { li, seq } = editing;
    if (text && text !== li.querySelector(".btext").textContent) {
      const op = { kind: "edit", of: seq, text, li, sentAt: Date.now() };
      pending.push(op);
      li.querySelector(".btext").textContent = text;
      setState(li, "pending");
      pub.send({ type: "edit", of: seq, text });
    }
    setEditing(null);
    return;
  }
  if (!text) return;
  cancelPartial();
  counter += 1;
  const id = `${sessionTag}-${counter}`;
  const li = lineItem(text);
  li.dataset.id = id;
  setState(li, "pending");
  list.append(li);
  pending.push({ kind: "final", id, text, li, sentAt: Date.now() });
  pub.send({ type: "final", text, id });
  // The server clears the partial this final completes.
  lastPartial = "";
  input.value = "";
  scrollOwn();
}

/** After a reconnect, everything not acked is sent again (finals keep their ids). */
function resendPending() {
  lastPartial = "";
  for (const op of pending) {
    op.sentAt = Date.now();
    pub.send(op.kind === "final" ? { type: "final", text: op.text, id: op.id } : { type: "edit", of: op.of, text: op.text });
  }
}

setInterval(() => {
  const now = Date.now();
  for (const op of pending) {
    if (op.kind === "final" && now - op.sentAt > RESEND_AFTER_MS && pub.live) {
      op.sentAt = now;
      pub.send({ type: "final", text: op.text, id: op.id });
    }
  }
}, 1000);

function onPublisherMessage(m) {
  switch (m.type) {
    case "hello":
      publisherId = m.publisher_id ?? null;
      break;
    case "ack":
      onAck(m);
      break;
    case "status":
      $("listeners").textContent = `${m.listeners} listening`;
      onAirNow = m.on_air;
      showOnAir();
      break;
    case "booth":
      showBooth(m);
      break;
    case "error":
      showAlert(`${m.message} (${m.code})`);
      if (m.code === "storage_unavailable" || m.code === "shutting_down") {
        // The oldest pending op was refused; it stays pending and is sent again.
        if (pending[0]) pending[0].sentAt = 0;
      }
      break;
  }
}

function onAck(m) {
  const i = m.id
    ? pending.findIndex((o) => o.id === m.id)
    : pending.findIndex((o) => o.kind === "edit");
  if (i < 0) return;
  const [op] = pending.splice(i, 1);
  if (op.kind === "final") {
    const existing = bySeq.get(m.seq);
    if (existing && existing !== op.li) {
      op.li.remove();
      setState(existing, "stored");
    } else {
      op.li.dataset.seq = String(m.seq);
      bySeq.set(m.seq, op.li);
      setState(op.li, "stored");
    }
  } else {
    setState(op.li, "stored");
  }
}

// ---- the channel as listeners see it --------------------------------------------------

function onOwnMessage(m) {
  if (m.type === "hello") {
    if (m.reset) {
      list.replaceChildren();
      bySeq.clear();
    }
    own.seenHello = true;
    return;
  }
  if (m.type === "partial") {
    // Shown only when a booth partner is on air (not this console's own typing echoed).
    const p = $("own-partial");
    p.textContent = partnerOnAir ? m.text : "";
    p.hidden = !partnerOnAir || !m.text;
    return;
  }
  if (typeof m.seq !== "number" || m.type === "ack") return;
  if (m.seq <= own.lastSeq) return;
  own.lastSeq = m.seq;
  if (m.type === "line") {
    let li = bySeq.get(m.seq);
    if (!li) {
      // This console's own final, seen before its ack: adopt the pending line.
      const op = pending.find((o) => o.kind === "final" && !o.li.dataset.seq && o.text === m.text);
      if (op) {
        li = op.li;
        li.dataset.seq = String(m.seq);
        bySeq.set(m.seq, li);
      }
    }
    if (!li) {
      li = lineItem(m.text);
      li.dataset.seq = String(m.seq);
      setState(li, "stored");
      bySeq.set(m.seq, li);
      const firstPending = [...list.children].find((x) => !x.dataset.seq);
      list.insertBefore(li, firstPending || null);
    }
    li.lang = langAttr(m.lang) || langAttr(ch.lang);
    if (m.expected_lang) markMismatch(li, m);
    scrollOwn();
  } else if (m.type === "edit") {
    const li = bySeq.get(m.of);
    if (li && !(editing && editing.li === li)) {
      li.querySelector(".btext").textContent = m.text;
      li.classList.add("edited");
    }
  } else if (m.type === "handover") {
    const note = el("li", { class: "note" }, `Handover: ${m.from || "nobody"} → ${m.to || "nobody"}`);
    list.insertBefore(note, [...list.children].find((x) => !x.dataset.seq && !x.classList.contains("note")) || null);
  }
}

function markMismatch(li, m) {
  li.classList.add("mismatch");
  const name = (t) => `${NATIVE[t] || t} (${t})`;
  const text = `Detected ${name(m.lang)}; this channel is ${name(m.expected_lang)}`;
  let w = li.querySelector(".warn");
  if (!w) {
    w = el("span", { class: "warn" });
    li.append(w);
  }
  w.textContent = `⚠ ${text}`;
  showAlert(`Language check: line ${m.seq} looks like ${name(m.lang)}, not ${name(m.expected_lang)}.`);
}

// ---- lines, corrections, keyboard -------------------------------------------------------

function lineItem(text) {
  const li = el("li", { class: "bline" });
  const b = el("button", { type: "button", class: "btext" });
  b.textContent = text;
  b.addEventListener("click", () => {
    if (li.dataset.seq) setEditing(li);
  });
  li.append(b, el("span", { class: "state" }));
  return li;
}

function setState(li, state) {
  li.dataset.state = state;
  li.querySelector(".state").textContent = { pending: "sending…", stored: "✓ stored" }[state] || state;
}

function setEditing(li) {
  if (editing) editing.li.classList.remove("editing");
  const label = $("input-label");
  if (!li) {
    if (editing) input.value = editing.draft;
    editing = null;
    label.textContent = "Caption — Enter commits the line";
    $("compose").classList.remove("correcting");
    input.focus();
    return;
  }
  const draft = editing ? editing.draft : input.value;
  if (!editing) cancelPartial();
  editing = { li, seq: Number(li.dataset.seq), draft };
  li.classList.add("editing");
  li.scrollIntoView({ block: "nearest" });
  label.textContent = `Correcting line ${editing.seq} — Enter saves, Esc cancels`;
  $("compose").classList.add("correcting");
  input.value = li.querySelector(".btext").textContent;
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

function committedLines() {
  return [...list.querySelectorAll("li.bline[data-seq]")];
}

input.addEventListener("input", typed);
input.addEventListener("keydown", (e) => {
  // An IME (Chinese, Japanese, ...) uses Enter to confirm a word: never commit then.
  if (e.isComposing || e.keyCode === 229) return;
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    commit();
  } else if (e.key === "Escape") {
    e.preventDefault();
    if (editing) setEditing(null);
    else if (input.value) {
      input.value = "";
      cancelPartial();
      pub.send({ type: "partial", text: "" });
      lastPartial = "";
    }
  } else if (e.key === "ArrowUp" && (editing || input.value === "" || input.selectionStart === 0)) {
    const lines = committedLines();
    const i = editing ? lines.indexOf(editing.li) - 1 : lines.length - 1;
    if (i >= 0) {
      e.preventDefault();
      setEditing(lines[i]);
    }
  } else if (e.key === "ArrowDown" && editing) {
    e.preventDefault();
    const lines = committedLines();
    const i = lines.indexOf(editing.li) + 1;
    setEditing(i < lines.length ? lines[i] : null);
  }
});
$("compose").addEventListener("submit", (e) => {
  e.preventDefault();
  commit();
});
document.addEventListener("keydown", (e) => {
  if (e.altKey && (e.key === "t" || e.key === "T") && !$("take").hidden) {
    e.preventDefault();
    pub.send({ type: "take" });
  }
});

function scrollOwn() {
  ownScroller.scrollTop = ownScroller.scrollHeight;
}

let alertTimer = null;
function showAlert(text) {
  const a = $("alert");
  a.textContent = text;
  a.hidden = false;
  clearTimeout(alertTimer);
  alertTimer = setTimeout(() => { a.hidden = true; }, 8000);
}

// ---- booth partners --------------------------------------------------------------------

function showOnAir() {
  const b = $("onair");
  b.dataset.on = String(onAirNow);
  b.textContent = onAirNow ? "On air" : "Off air";
}

function showBooth(m) {
  const box = $("booth-state");
  box.hidden = false;
  const mine = m.on_air && publisherId !== null && m.on_air.id === publisherId;
  onAirNow = !!m.on_air;
  partnerOnAir = !!m.on_air && !mine;
  showOnAir();
  if (mine) $("onair").textContent = "You are on air";
  $("booth-who").textContent = !m.on_air
    ? "Nobody is on air."
    : mine ? "You are on air." : `${m.on_air.name} is on air; you are on standby.`;
  const f = m.feedback || {};
  const asks = [["slower", "slower"], ["unclear", "unclear"], ["lost", "lost"]]
    .filter(([k]) => f[k] > 0).map(([k, label]) => `${label} ×${f[k]}`);
  $("feedback").textContent = asks.length ? `Audience: ${asks.join(", ")}` : "";
  $("take").hidden = mine;
  $("request").hidden = mine || !m.on_air;
  const asked = m.request && m.request.id !== publisherId;
  $("accept").hidden = !(mine && asked);
  if (mine && asked) $("accept").textContent = `Hand over to ${m.request.name}`;
  if (m.language_alert && m.language_alert !== lastLanguageAlert) {
    const t = String(m.language_alert);
    showAlert(`Language alert: your recent lines look like ${NATIVE[t] || t} (${t}), not ${labelOf(ch)}.`);
  }
  lastLanguageAlert = m.language_alert || null;
}

$("take").addEventListener("click", () => pub.send({ type: "take" }));
$("request").addEventListener("click", () => pub.send({ type: "handover_request" }));
$("accept").addEventListener("click", () => pub.send({ type: "handover_accept" }));

// ---- start ----------------------------------------------------------------------------

async function start() {
  try {
    ev = (await loadEvents()).find((e) => e.id === event) || null;
  } catch {
    ev = null;
  }
  if (!ev) {
    $("signin").replaceChildren(el("p", { class: "error" }, `There is no event “${event}”.`), el("a", { href: "/" }, "See all events"));
    return;
  }
  $("event-title").textContent = `· ${ev.title || ev.id}`;
  const sel = $("sel-channel");
  for (const c of ev.channels) {
    sel.append(el("option", { value: c.id, lang: langAttr(c.lang) }, `${labelOf(c)} (${c.id})`));
  }
  const saved = readStore(sessionStorage, SESSION_KEY, { channel: null, token: "", name: "" });
  const asked = new URLSearchParams(location.search).get("channel");
  if (asked && ev.channels.some((c) => c.id === asked)) sel.value = asked;
  else if (saved.channel && ev.channels.some((c) => c.id === saved.channel)) sel.value = saved.channel;
  $("name").value = saved.name || "";
  $("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn({ channel: sel.value, token: $("token").value.trim(), name: $("name").value.trim() }, false);
  });
  $("signout").addEventListener("click", () => signOut(""));
  if (saved.token && saved.channel) signIn(saved, true);
  else $("token").focus();
}

start();
