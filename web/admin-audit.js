// The dashboard's organisers and their trail: named admin tokens (one per organiser, each
// action attributed to its name; issued with the token shown once, revoked) and the audit
// log of every admin action, newest first, exportable as CSV.

import { el } from "./common.js";
import { t } from "./i18n.js";
import { api } from "./admin-manage.js";

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;
let token = null;
let onIssued = () => {};

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : t("admin.never");
}

async function showTokens() {
  const list = await api("GET", "/v1/admin/tokens");
  const rows = list.credentials.map((c) => {
    const revoke = el("button", { type: "button", class: "btn small" }, t("admin.m.revoke"));
    revoke.addEventListener("click", async () => {
      await api("DELETE", `/v1/admin/tokens/${enc(c.id)}`).catch(() => {});
      refresh();
    });
    return el("tr", { "data-token": c.id },
      el("td", {}, c.name), el("td", {}, when(c.created_ms)), el("td", {}, when(c.last_used_ms)),
      el("td", {}, c.revoked_ms ? t("admin.m.revoked_at", { time: when(c.revoked_ms) }) : revoke));
  });
  $("token-rows").replaceChildren(...rows);
}

async function showAudit() {
  const log = await api("GET", "/v1/admin/audit?limit=100");
  $("audit-rows").replaceChildren(...log.entries.map((e) => el("tr", {},
    el("td", {}, new Date(e.ts).toLocaleString()), el("td", {}, e.actor), el("td", {}, e.action),
    el("td", {}, e.target), el("td", {}, e.detail))));
}

/** Shows tokens and the audit log again. */
export async function refresh() {
  if (!token) return;
  try {
    await Promise.all([showTokens(), showAudit()]);
  } catch {
    // Shown again at the next refresh.
  }
}

/** Audit entries per request of the export (the server's largest page). */
const EXPORT_PAGE = 1000;

/** The URL of the page after this one, from the answer's `Link: <…>; rel="next"` (null: last). */
function nextPage(res) {
  const m = /<([^>]*)>\s*;\s*rel="next"/.exec(res.headers.get("Link") || "");
  return m ? m[1] : null;
}

/**
 * Downloads the whole audit log as CSV (with the token: a plain link could not send it), a
 * page at a time, older pages after newer ones, the header line once.
 */
async function exportCsv() {
  const parts = [];
  let url = `/v1/admin/audit?format=csv&limit=${EXPORT_PAGE}`;
  while (url) {
    const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    if (!res.ok) {
      const why = await res.json().then((e) => e.message, () => res.statusText);
      $("manage-error").textContent = t("admin.m.refused", { message: why });
      $("manage-error").hidden = false;
      return;
    }
    const text = await res.text();
    parts.push(parts.length ? text.slice(text.indexOf("\r\n") + 2) : text);
    url = nextPage(res);
  }
  const file = URL.createObjectURL(new Blob(parts, { type: "text/csv;charset=utf-8" }));
  const a = el("a", { href: file, download: "babelcast-audit.csv" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(file), 10000);
}

let wired = false;
/** Shows the organisers' section for the admin token `value`; `issued` shows a new token. */
export function start(value, issued) {
  token = value;
  onIssued = issued;
  if (!wired) {
    wired = true;
    $("new-token").addEventListener("submit", async (e) => {
      e.preventDefault();
      const name = $("new-token").elements.name;
      try {
        onIssued(await api("POST", "/v1/admin/tokens", { name: name.value.trim() }));
        name.value = "";
      } catch (err) {
        $("manage-error").textContent = t("admin.m.refused", { message: err.message });
        $("manage-error").hidden = false;
      }
      refresh();
    });
    $("audit-export").addEventListener("click", exportCsv);
    document.addEventListener("babelcast:changed", refresh);
    $("audit-refresh").addEventListener("click", refresh);
  }
  $("organisers").hidden = false;
  refresh();
}

export function stop() {
  token = null;
  $("organisers").hidden = true;
}
