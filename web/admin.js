// Organiser dashboard: polls GET /v1/admin/channels with the admin token (kept in
// sessionStorage) and updates one row per channel in place. On a phone each row is a card
// whose cells carry their column's name.

import { channelPath, el, langAttr, readStore } from "./common.js";
import { t, use } from "./i18n.js";
import * as manage from "./admin-manage.js";
import * as organisers from "./admin-audit.js";

/** How often the dashboard polls. */
const POLL_MS = 2000;
/** Every how many polls the events and credentials are read again (unless someone types). */
const MANAGE_EVERY = 5;
let polls = 0;
const KEY = "babelcast.admin";
const $ = (id) => document.getElementById(id);
let token = null;
let timer = null;
const rows = new Map();

function setConn(state, key) {
  $("conn").dataset.state = state;
  $("conn").querySelector(".conn-text").textContent = t(key);
}

function ago(ms) {
  if (ms === null || ms === undefined) return t("admin.never");
  const s = Math.round(ms / 1000);
  if (s < 60) return t("admin.ago.s", { n: s });
  if (s < 3600) return t("admin.ago.min", { n: Math.floor(s / 60) });
  return t("admin.ago.h", { n: Math.floor(s / 3600) });
}

/** A cell that names its column (shown on a phone, where the header row is not). */
function td(cls, col, ...children) {
  return el("td", { class: cls, "data-label": t(`admin.col.${col}`) }, ...children);
}

function row(c) {
  const key = `${c.event}/${c.id}`;
  let tr = rows.get(key);
  if (tr) return tr;
  const link = (f) => `${channelPath(c.event, c.id, "transcript")}?format=${f}`;
  tr = el("tr", { "data-key": key },
    el("th", { scope: "row" },
      el("span", { class: "chan", lang: langAttr(c.lang) }, c.label),
      el("span", { class: "muted small" }, `${c.event_title || c.event} · ${c.id}${c.source ? ` ← ${c.source}` : ""}`)),
    td("state", "state", el("span", { class: "onair" }), el("span", { class: "who muted small" })),
    td("num publishers", "publishers"),
    td("num listeners", "listeners"),
    td("num rate", "rate"),
    td("num age", "age"),
    td("alerts-cell", "alerts"),
    td("links", "transcript",
      ...["txt", "vtt", "srt", "json"].flatMap((f, i) => [i ? " " : "", el("a", { href: link(f), download: `${c.event}-${c.id}.${f}` }, f.toUpperCase())])));
  rows.set(key, tr);
  $("rows").append(tr);
  return tr;
}

function render(data) {
  let listeners = 0;
  let onAir = 0;
  const all = [];
  // Channels deleted since the last poll leave the table.
  const live = new Set(data.channels.map((c) => `${c.event}/${c.id}`));
  for (const [key, tr] of rows) {
    if (!live.has(key)) {
      tr.remove();
      rows.delete(key);
    }
  }
  for (const c of data.channels) {
    listeners += c.listeners;
    if (c.on_air) onAir += 1;
    const tr = row(c);
    const air = tr.querySelector(".onair");
    air.dataset.on = String(c.on_air);
    air.textContent = t(c.on_air ? "admin.on_air" : "admin.idle");
    tr.querySelector(".who").textContent = c.on_air_name || "";
    tr.querySelector(".publishers").textContent = String(c.publishers);
    tr.querySelector(".listeners").textContent = String(c.listeners);
    tr.querySelector(".rate").textContent = String(c.lines_per_minute);
    tr.querySelector(".age").textContent = ago(c.last_line_age_ms);
    const cell = tr.querySelector(".alerts-cell");
    const f = c.feedback || {};
    const asks = ["slower", "unclear", "lost"].filter((k) => f[k] > 0)
      .map((k) => el("span", { class: "badge info" }, t("admin.feedback", { kind: t(`admin.feedback.${k}`), n: f[k] })));
    cell.replaceChildren(...c.alerts.map((a) => el("span", { class: `badge ${a.kind}` }, a.message)), ...asks);
    tr.classList.toggle("alerting", c.alerts.length > 0);
    for (const a of c.alerts) all.push(`${c.label} (${c.event}): ${a.message}`);
  }
  $("totals").textContent = t("admin.totals", { listeners, on_air: onAir, channels: data.channels.length });
  const box = $("alerts");
  const text = all.join("\n");
  if (box.dataset.text !== text) {
    box.dataset.text = text;
    box.replaceChildren(...all.map((a) => el("p", { class: "alert" }, `⚠ ${a}`)));
  }
  $("updated").textContent = t("admin.updated", { time: new Date().toLocaleTimeString() });
}

async function poll() {
  clearTimeout(timer);
  if (!token) return;
  try {
    const res = await fetch("/v1/admin/channels", {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    if (res.status === 401) {
      signOut(t("admin.refused"));
      return;
    }
    if (!res.ok) throw new Error(String(res.status));
    render(await res.json());
    setConn("live", "conn.live");
    polls += 1;
    if (polls % MANAGE_EVERY === 0) manage.refresh(false);
  } catch {
    setConn("reconnecting", "admin.unreachable");
  }
  if (token) timer = setTimeout(poll, POLL_MS);
}

function signIn(value) {
  token = value;
  try {
    sessionStorage.setItem(KEY, JSON.stringify({ token }));
  } catch {
    // kept for this page only
  }
  $("signin").hidden = true;
  $("board").hidden = false;
  $("signout").hidden = false;
  setConn("connecting", "conn.connecting");
  poll();
  manage.start(token);
  organisers.start(token, manage.showIssued);
}

function signOut(message) {
  token = null;
  clearTimeout(timer);
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // nothing stored
  }
  $("signin").hidden = false;
  $("board").hidden = true;
  $("signout").hidden = true;
  manage.stop();
  organisers.stop();
  setConn("idle", "admin.signed_out");
  const err = $("signin-error");
  err.textContent = message || "";
  err.hidden = !message;
  $("token").focus();
}

async function start() {
  await use("en");
  $("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("token").value.trim();
    if (value) signIn(value);
  });
  $("signout").addEventListener("click", () => signOut(""));
  const saved = readStore(sessionStorage, KEY, { token: "" }).token;
  if (saved) signIn(saved);
  else {
    setConn("idle", "admin.signed_out");
    $("token").focus();
  }
}

start();
