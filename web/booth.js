// Booth console: an interpreter publishes into one channel. Typing streams partials
// (throttled, never in the middle of an input method's composition), Enter commits a final
// with a client id (resent after a reconnect until acked: the server keeps finals idempotent
// by id), a previous line can be corrected in place, and the source channel's live captions
// run beside the input. A partner on standby publishes nothing: a line committed then is held
// in the console, marked not sent, until the interpreter is on air and presses "Send now".

import {
  channelPath, connBadge, dirOf, el, eventFromPath, labelOf, langAttr, loadEvents, NATIVE,
  readStore, Socket, writeStore, wsUrl,
} from "./common.js";
import { Feed } from "./feed.js";
import { t, use } from "./i18n.js";
import { Lines } from "./booth-lines.js";
import { Sender } from "./booth-send.js";
import { SoundPanel } from "./booth-audio.js";

/** How long an alert stays. */
const ALERT_MS = 10000;

const $ = (id) => document.getElementById(id);
const event = eventFromPath();
const SESSION_KEY = `babelcast.booth.${event}`;
const input = $("input");
const ownScroller = $("own-scroller");

let ev = null;
let me = null; // { channel, token, name }
let ch = null;
let publisherId = null;
/** The last booth message: who is on air (null before the first). */
let booth = null;
let lastLanguageAlert = null;
let editing = null; // { li, seq, draft }

const lines = new Lines($("lines"), {
  onPick: (li) => setEditing(li),
  onSend: (li) => sender.sendHeld(li),
  onDiscard: (li) => sender.discard(li),
});
const sourceFeed = new Feed($("pane-source"), { announce: false });
const pub = new Socket(
  () => wsUrl(`${channelPath(event, me.channel, "publish")}?token=${encodeURIComponent(me.token)}`
    + (me.name ? `&name=${encodeURIComponent(me.name)}` : "")),
  { onMessage: onPublisherMessage },
);
const badge = connBadge($("conn"), pub);
const sender = new Sender({
  socket: pub,
  lines,
  air: () => ({ standby: standby(), partner: partnerName() }),
  alert: (text) => showAlert(text),
});
const sound = new SoundPanel({
  pub,
  event,
  me: () => me,
  air: () => ({ mine: mine(), standby: standby(), partner: partnerName() }),
});
pub.onState = (state, delay, reason) => {
  badge(state, delay);
  sound.refresh();
  if (state === "live") sender.resendAll();
  if (state === "reconnecting") checkToken();
  // The organiser's decision (4003 revoked, 4004 channel deleted, 4005 event over): say why.
  if (state === "closed") signOut(t(`booth.closed.${delay}`, { reason: reason || "" }));
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

// ---- who is on air ------------------------------------------------------------------------

function mine() {
  return !!(booth && booth.on_air && publisherId !== null && booth.on_air.id === publisherId);
}

/** A partner is on air: this console is on standby and publishes nothing. */
function standby() {
  return !!(booth && booth.on_air && !mine());
}

/** The name of the partner on air (or "your partner"). */
function partnerName() {
  return standby() ? booth.on_air.name : t("booth.partner");
}

// ---- sign in --------------------------------------------------------------------------

/**
 * Asks the server whether the token may publish now: 426 = yes (it just wants a WebSocket);
 * 401, 404, or 409/410 outside the event's schedule. `code` is the refusal's code.
 */
async function tokenStatus(channel, token) {
  try {
    const res = await fetch(channelPath(event, channel, "publish"), {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    let code = "";
    if (res.status !== 426) code = (await res.json().catch(() => ({}))).code || "";
    return { status: res.status, code };
  } catch {
    return { status: 0, code: "" };
  }
}

/** The sign-in refusal people read for a token status (null: the token may publish). */
function refusalOf({ status, code }) {
  if (code === "credential_revoked") return "booth.signin.revoked_by_organiser";
  if (code === "event_ended" || code === "event_archived") return "booth.signin.ended";
  if (status === 401) return "booth.signin.wrong_token";
  if (status === 404) return "booth.signin.unknown_channel";
  if (status === 0) return "booth.signin.unreachable";
  return null;
}

async function checkToken() {
  if (!me) return;
  const st = await tokenStatus(me.channel, me.token);
  if (st.status === 401 || st.code === "event_ended" || st.code === "event_archived") {
    signOut(t(st.code === "credential_revoked" || st.status !== 401 ? refusalOf(st) : "booth.signin.revoked"));
  } else if (st.code === "event_not_started") {
    showAlert(t("booth.signin.not_started"));
  }
}

async function signIn(cred, quiet) {
  const err = $("signin-error");
  const st = await tokenStatus(cred.channel, cred.token);
  const refusal = refusalOf(st);
  if (refusal) {
    if (!quiet || st.code) {
      err.textContent = t(refusal);
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
  sound.stop();
  $("sound").hidden = true;
  for (const s of [pub, own, source]) s.stop();
  me = null;
  booth = null;
  try {
    sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // nothing stored
  }
  $("console").hidden = true;
  $("signin").hidden = false;
  $("signout").hidden = true;
  $("onair").hidden = $("listeners").hidden = $("signed-as").hidden = true;
  $("conn").dataset.state = "idle";
  $("conn").querySelector(".conn-text").textContent = t("booth.signed_out");
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
  const name = labelOf(ch);
  $("title").textContent = t("booth.channel_title", { name });
  $("console-title").textContent = t("booth.channel_title", { name });
  document.title = `${t("booth.channel_title", { name })} · ${ev.title || ev.id}`;
  $("own-title").textContent = t("booth.own_title", { name });
  input.lang = langAttr(ch.lang);
  input.dir = dirOf(ch.lang);
  $("lines").lang = langAttr(ch.lang);
  lines.clear();
  sender.reset();
  booth = null;
  own.lastSeq = 0;
  own.seenHello = false;
  pub.start();
  own.start();
  const src = ch.source && ev.channels.find((c) => c.id === ch.source);
  $("console").classList.toggle("no-source", !src);
  $("pane-source").hidden = !src;
  if (src) {
    $("source-title").textContent = t("booth.source_title", { name: labelOf(src) });
    sourceFeed.clear();
    sourceFeed.setLang(src.lang);
    source.start();
  }
  showAir();
  sound.show(ch);
  setEditing(null);
  input.focus();
}

// ---- publishing ---------------------------------------------------------------------------

function commit() {
  const text = input.value.trim();
  if (editing) {
    sender.edit(editing.li, editing.seq, text);
    setEditing(null);
    return;
  }
  if (!text) return;
  sender.final(text);
  input.value = "";
  scrollOwn();
}

function onPublisherMessage(m) {
  switch (m.type) {
    case "hello":
      publisherId = m.publisher_id ?? null;
      break;
    case "ack":
      sender.ack(m);
      break;
    case "status":
      $("listeners").textContent = t("booth.listening", { n: m.listeners });
      showInterrupted(!!m.interrupted);
      break;
    case "booth":
      showBooth(m);
      break;
    case "error":
      if (!sender.refused(m)) onError(m);
      break;
  }
}

/** What the console last asked of the booth (take, handover_request, handover_accept). */
let lastAsk = null;

/** An error about a booth action or anything else: a sentence, never a code. */
function onError(m) {
  const name = partnerName();
  if (m.code === "handover_refused") {
    const key = { handover_request: "booth.alert.request_refused", handover_accept: "booth.alert.accept_refused" }[lastAsk];
    showAlert(t(key || "booth.alert.take_refused", { name }));
  } else if (m.code === "not_on_air") {
    showAlert(t("booth.alert.standby", { name }));
  } else if (m.code === "rate_limited") {
    showAlert(t("booth.alert.too_fast"));
  } else {
    showAlert(t("booth.alert.other", { message: m.message || "" }));
  }
}

// ---- the channel as listeners see it --------------------------------------------------

function onOwnMessage(m) {
  if (m.type === "hello") {
    if (m.reset) lines.clear();
    own.seenHello = true;
    return;
  }
  if (m.type === "partial") {
    // Shown only when a booth partner is on air (not this console's own typing echoed).
    const p = $("own-partial");
    const show = standby() && !!m.text;
    p.textContent = show ? m.text : "";
    p.hidden = !show;
    return;
  }
  if (typeof m.seq !== "number" || m.type === "ack") return;
  if (m.seq <= own.lastSeq) return;
  own.lastSeq = m.seq;
  if (m.type === "line") {
    let li = lines.get(m.seq);
    if (!li) {
      // This console's own final, seen before its ack: adopt the pending line.
      li = sender.unacked(m.text);
      if (li) lines.commit(li, m.seq);
    }
    if (!li) li = lines.committed(m.seq, m.text);
    li.lang = langAttr(m.lang) || langAttr(ch.lang);
    if (m.expected_lang) markMismatch(li, m);
    $("own-partial").hidden = true;
    scrollOwn();
  } else if (m.type === "edit") {
    const li = lines.get(m.of);
    if (li && !(editing && editing.li === li)) {
      li.querySelector(".btext").textContent = m.text;
      li.classList.add("edited");
    }
  } else if (m.type === "handover") {
    const nobody = t("booth.nobody");
    lines.note(m.seq, t("booth.handover_note", { from: m.from || nobody, to: m.to || nobody }));
    scrollOwn();
  }
}

function markMismatch(li, m) {
  li.classList.add("mismatch");
  const name = (tag) => `${NATIVE[tag] || tag} (${tag})`;
  let w = li.querySelector(".warn");
  if (!w) {
    w = el("span", { class: "warn" });
    li.append(w);
  }
  w.textContent = `⚠ ${t("booth.mismatch", { detected: name(m.lang), expected: name(m.expected_lang) })}`;
  showAlert(t("booth.alert.mismatch", { seq: m.seq, detected: name(m.lang), expected: name(m.expected_lang) }));
}

// ---- corrections, keyboard -------------------------------------------------------------

function setEditing(li) {
  if (editing) editing.li.classList.remove("editing");
  if (!li) {
    if (editing) input.value = editing.draft;
    editing = null;
    sender.paused = false;
    $("compose").classList.remove("correcting");
    showAir();
    input.focus();
    return;
  }
  const draft = editing ? editing.draft : input.value;
  if (!editing) sender.cancelPartial();
  sender.paused = true;
  editing = { li, seq: Number(li.dataset.seq), draft };
  li.classList.add("editing");
  li.scrollIntoView({ block: "nearest" });
  $("input-label").textContent = t("booth.label.correcting", { seq: editing.seq });
  $("compose").classList.add("correcting");
  input.value = li.querySelector(".btext").textContent;
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

input.addEventListener("compositionstart", () => { sender.composing = true; });
input.addEventListener("compositionend", () => {
  sender.composing = false;
  // The composed text is in the box now: it goes out as the next partial.
  sender.typed(input.value);
});
input.addEventListener("input", (e) => {
  if (!e.isComposing) sender.typed(input.value);
});
input.addEventListener("keydown", (e) => {
  // An IME (Chinese, Japanese, ...) uses Enter to confirm a word: never commit then.
  if (e.isComposing || sender.composing || e.keyCode === 229) return;
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    commit();
  } else if (e.key === "Escape") {
    e.preventDefault();
    if (editing) setEditing(null);
    else if (input.value) {
      input.value = "";
      sender.clearPartial();
    }
  } else if (e.key === "ArrowUp" && (editing || input.value === "" || input.selectionStart === 0)) {
    const all = lines.committedLines();
    const i = editing ? all.indexOf(editing.li) - 1 : all.length - 1;
    if (i >= 0) {
      e.preventDefault();
      setEditing(all[i]);
    }
  } else if (e.key === "ArrowDown" && editing) {
    e.preventDefault();
    const all = lines.committedLines();
    const i = all.indexOf(editing.li) + 1;
    setEditing(i < all.length ? all[i] : null);
  }
});
$("compose").addEventListener("submit", (e) => {
  e.preventDefault();
  commit();
});

/** Booth actions, by button and by shortcut (Alt+T, Alt+A, Alt+H). */
const ACTIONS = { KeyT: ["take", "take"], KeyA: ["request", "handover_request"], KeyH: ["accept", "handover_accept"] };
function ask(type) {
  lastAsk = type;
  pub.send({ type });
}
document.addEventListener("keydown", (e) => {
  // By key position (`code`): on a Mac, Alt+T types "†".
  const action = e.altKey && !e.ctrlKey && !e.metaKey && ACTIONS[e.code];
  if (action && me && !$(action[0]).hidden) {
    e.preventDefault();
    ask(action[1]);
  }
});
for (const [id, type] of Object.values(ACTIONS)) $(id).addEventListener("click", () => ask(type));

function scrollOwn() {
  ownScroller.scrollTop = ownScroller.scrollHeight;
}

let alertTimer = null;
function showAlert(text) {
  const a = $("alert");
  a.textContent = text;
  a.hidden = false;
  clearTimeout(alertTimer);
  alertTimer = setTimeout(() => { a.hidden = true; }, ALERT_MS);
}

// ---- booth partners --------------------------------------------------------------------

/** This server lost the other servers of its cluster: nobody is on air through it and lines
 * wait here (they are sent again) until it is back. */
function showInterrupted(cut) {
  const c = $("conn");
  if (cut) {
    c.dataset.state = "interrupted";
    c.querySelector(".conn-text").textContent = t("booth.conn.cut_off");
  } else if (c.dataset.state === "interrupted" && pub.live) {
    badge("live");
  }
}

/** The badge, the caption box and the held lines, from who is on air. */
function showAir() {
  const b = $("onair");
  const state = mine() ? "mine" : standby() ? "standby" : "off";
  b.dataset.state = state;
  b.textContent = t({ mine: "booth.badge.on_air", standby: "booth.badge.standby", off: "booth.badge.off_air" }[state]);
  $("compose").classList.toggle("standby", state === "standby");
  const note = $("standby-note");
  note.hidden = state !== "standby";
  if (state === "standby") note.textContent = t("booth.standby_note", { name: booth.on_air.name });
  if (!editing) $("input-label").textContent = t(state === "standby" ? "booth.label.standby" : "booth.label.caption");
  lines.setOnAir(state === "mine");
  if (state === "standby") sender.cancelPartial();
}

function showBooth(m) {
  const wasStandby = standby();
  booth = m;
  const self = (m.publishers || []).find((p) => p.id === publisherId);
  $("signed-as").hidden = !self;
  if (self) $("signed-as").textContent = t("booth.signed_in_as", { name: self.name });
  $("booth-state").hidden = false;
  const isMine = mine();
  $("booth-who").textContent = !m.on_air
    ? t("booth.who.nobody")
    : isMine ? t("booth.who.you") : t("booth.who.partner", { name: m.on_air.name });
  const f = m.feedback || {};
  const asks = ["slower", "unclear", "lost"].filter((k) => f[k] > 0).map((k) => `${t(`booth.feedback.${k}`)} ×${f[k]}`);
  $("feedback").textContent = asks.length ? t("booth.feedback", { asks: asks.join(", ") }) : "";
  $("take").hidden = isMine;
  $("request").hidden = isMine || !m.on_air;
  const asked = m.request && m.request.id !== publisherId;
  $("accept").hidden = !(isMine && asked);
  if (isMine && asked) $("accept").textContent = t("booth.accept", { name: m.request.name });
  if (m.language_alert && m.language_alert !== lastLanguageAlert) {
    const tag = String(m.language_alert);
    showAlert(t("booth.alert.language", { detected: `${NATIVE[tag] || tag} (${tag})`, name: labelOf(ch) }));
  }
  lastLanguageAlert = m.language_alert || null;
  showAir();
  sound.refresh();
  // Back on air with something typed on standby: it goes out as a partial now.
  if (wasStandby && isMine && input.value && !editing) sender.typed(input.value);
}

// ---- start ----------------------------------------------------------------------------

async function start() {
  await use("en");
  try {
    ev = (await loadEvents()).find((e) => e.id === event) || null;
  } catch {
    ev = null;
  }
  if (!ev) {
    $("signin").replaceChildren(el("h1", {}, t("booth.signin.title")), el("p", { class: "error" }, t("booth.no_event", { event })), el("a", { href: "/" }, t("booth.all_events")));
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
  // A credential's booth link (URL or QR code) carries its token after '#': it signs in at
  // once, and the token leaves the address bar (and the history) right away.
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromLink && asked) {
    history.replaceState(null, "", location.pathname + location.search);
    signIn({ channel: asked, token: fromLink, name: "" }, false);
  } else if (saved.token && saved.channel) signIn(saved, true);
  else $("token").focus();
}

start();
