// Organisers' screens of the dashboard: events (create, schedule, start, end, archive,
// publish the transcript, delete transcripts, delete), their channels (add, delete) and
// the people who publish to them (a credential per person: issued with its booth link and
// QR code shown once, listed with last use, revoked, rotated). The config file's events are
// shown read-only. Everything goes through the admin API with the signed-in admin token.

import { el, labelOf, langAttr } from "./common.js";
import { t } from "./i18n.js";

/** A destructive button must be pressed twice within this time. */
const CONFIRM_MS = 5000;

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;
let token = null;
/** The last answer of GET /v1/admin/events and /v1/admin/credentials, as rendered. */
let rendered = "";

/** Calls the admin API; the JSON answer, or throws an Error carrying the server's message. */
export async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    cache: "no-store",
  });
  const text = await res.text();
  const v = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error((v && v.message) || `${res.status}`);
  return v;
}

function say(text) {
  const e = $("manage-error");
  e.textContent = text || "";
  e.hidden = !text;
}

/** Runs an action, then shows the events again (or the refusal, in words). */
async function act(f) {
  say("");
  try {
    await f();
  } catch (e) {
    say(t("admin.m.refused", { message: e.message }));
  }
  await refresh(true);
  // The audit log and the dashboard's other parts follow.
  document.dispatchEvent(new Event("babelcast:changed"));
}

/** A button that acts at once, or (`danger`) on a second press within CONFIRM_MS. */
function button(label, f, { danger = false, primary = false } = {}) {
  const b = el("button", { type: "button", class: `btn small${primary ? " primary" : ""}` }, label);
  let armed = null;
  b.addEventListener("click", () => {
    if (danger && !armed) {
      b.textContent = t("admin.m.confirm", { action: label });
      armed = setTimeout(() => { armed = null; b.textContent = label; }, CONFIRM_MS);
      return;
    }
    clearTimeout(armed);
    armed = null;
    act(f);
  });
  return b;
}

function field(label, input) {
  return el("label", {}, el("span", {}, label), input);
}

/** A Unix-ms time for a `datetime-local` input (local time), or "". */
function localInput(ms) {
  if (!ms) return "";
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

function msOf(value) {
  return value ? new Date(value).getTime() : null;
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : t("admin.never");
}

// ---- the credential just issued -----------------------------------------------------------

/** Shows a credential's token, booth link and QR code: the only time they are shown. */
export function showIssued(c) {
  const box = $("issued");
  const copy = (text) => button(t("admin.m.copy"), async () => navigator.clipboard.writeText(text));
  const qr = c.qr_svg ? el("img", { src: `data:image/svg+xml;charset=utf-8,${enc(c.qr_svg)}`, alt: t("admin.m.qr_alt", { name: c.name }), width: 192, height: 192 }) : "";
  box.replaceChildren(
    el("h3", {}, t(c.event ? "admin.m.issued" : "admin.m.issued_admin", { name: c.name })),
    el("p", { class: "muted" }, t("admin.m.once")),
    ...(c.booth_url ? [
      el("p", {}, t("admin.m.booth_link"), " ", el("a", { href: c.booth_url, class: "booth-link", target: "_blank", rel: "noopener" }, c.booth_url), " ", copy(c.booth_url)),
      qr,
      el("p", {}, t("admin.m.software_url"), " ", el("code", { class: "publish-url" }, c.publish_url), " ", copy(c.publish_url)),
    ] : [el("p", {}, el("code", { class: "admin-token" }, c.token), " ", copy(c.token))]),
    button(t("admin.m.done"), async () => { box.hidden = true; box.replaceChildren(); }),
  );
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

// ---- one event ----------------------------------------------------------------------------

function credentialRow(c) {
  const revoked = !!c.revoked_ms;
  return el("tr", { "data-credential": c.id, class: revoked ? "muted" : "" },
    el("td", {}, c.name),
    el("td", {}, when(c.created_ms), el("br"), el("span", { class: "muted small" }, t("admin.m.by", { name: c.created_by }))),
    el("td", {}, when(c.last_used_ms)),
    el("td", {}, revoked ? t("admin.m.revoked_at", { time: when(c.revoked_ms) })
      : el("span", { class: "row-actions" },
        button(t("admin.m.revoke"), () => api("DELETE", `/v1/admin/credentials/${enc(c.id)}`), { danger: true }),
        button(t("admin.m.rotate"), async () => showIssued(await api("POST", `/v1/admin/credentials/${enc(c.id)}/rotate`, {}))))));
}

function channelBlock(ev, ch, creds) {
  const mine = creds.filter((c) => c.channel === ch.id);
  const name = el("input", { name: "name", required: true, maxlength: 64, placeholder: t("admin.m.person_example") });
  const issue = el("form", { class: "inline issue" }, field(t("admin.m.person"), name),
    el("button", { type: "submit", class: "btn small primary" }, t("admin.m.issue")));
  issue.addEventListener("submit", (e) => {
    e.preventDefault();
    act(async () => showIssued(await api("POST", `/v1/admin/events/${enc(ev.id)}/channels/${enc(ch.id)}/credentials`, { name: name.value.trim() })));
  });
  const head = el("h4", {}, el("span", { lang: langAttr(ch.lang) }, labelOf(ch)), " ",
    el("span", { class: "muted small" }, `${ch.id} · ${ch.lang}${ch.source ? ` ← ${ch.source}` : ""}${ch.interpreted ? ` · ${t("admin.m.interpreted")}` : ""}`));
  const block = el("div", { class: "channel-block", "data-channel": ch.id }, head);
  if (ev.origin === "stored") {
    block.append(editChannelForm(ev, ch));
    block.append(el("p", { class: "row-actions" },
      button(t("admin.m.delete_channel"), () => api("DELETE", `/v1/admin/events/${enc(ev.id)}/channels/${enc(ch.id)}`), { danger: true }),
      button(t("admin.m.delete_channel_force"), () => api("DELETE", `/v1/admin/events/${enc(ev.id)}/channels/${enc(ch.id)}?force=1`), { danger: true })));
  }
  if (mine.length) {
    block.append(el("table", {}, el("caption", { class: "sr-only" }, t("admin.m.people_of", { name: labelOf(ch) })),
      el("thead", {}, el("tr", {}, ...["person", "issued", "last_use", "actions"].map((k) => el("th", { scope: "col" }, t(`admin.m.col.${k}`))))),
      el("tbody", {}, ...mine.map(credentialRow))));
  }
  block.append(issue);
  return block;
}

/** The channel's language, label, source and "interpreted", changed in place. */
function editChannelForm(ev, ch) {
  const lang = el("input", { name: "lang", required: true, value: ch.lang });
  const label = el("input", { name: "label", maxlength: 64, value: ch.label });
  const source = el("select", { name: "source" }, el("option", { value: "" }, t("admin.m.no_source")),
    ...ev.channels.filter((c) => c.id !== ch.id).map((c) => el("option", { value: c.id, selected: c.id === ch.source }, `${labelOf(c)} (${c.id})`)));
  const interpreted = el("input", { type: "checkbox", name: "interpreted", checked: ch.interpreted });
  const form = el("form", { class: "inline edit-channel" },
    field(t("admin.m.lang"), lang), field(t("admin.m.label"), label),
    field(t("admin.m.source"), source), field(t("admin.m.interpreted"), interpreted),
    el("button", { type: "submit", class: "btn small" }, t("admin.m.save")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(() => api("PATCH", `/v1/admin/events/${enc(ev.id)}/channels/${enc(ch.id)}`, {
      lang: lang.value.trim(), label: label.value.trim(), source: source.value || null, interpreted: interpreted.checked,
    }));
  });
  return form;
}

function addChannelForm(ev) {
  const id = el("input", { name: "id", required: true, pattern: "[a-z0-9_\\-]{1,64}", placeholder: "es" });
  const lang = el("input", { name: "lang", required: true, placeholder: "es" });
  const label = el("input", { name: "label", maxlength: 64, placeholder: "Español" });
  const source = el("select", { name: "source" }, el("option", { value: "" }, t("admin.m.no_source")),
    ...ev.channels.map((c) => el("option", { value: c.id }, `${labelOf(c)} (${c.id})`)));
  const interpreted = el("input", { type: "checkbox", name: "interpreted", checked: true });
  const form = el("form", { class: "inline add-channel" },
    field(t("admin.m.channel_id"), id), field(t("admin.m.lang"), lang), field(t("admin.m.label"), label),
    field(t("admin.m.source"), source), field(t("admin.m.interpreted"), interpreted),
    el("button", { type: "submit", class: "btn small primary" }, t("admin.m.add_channel")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(() => api("POST", `/v1/admin/events/${enc(ev.id)}/channels`, {
      id: id.value.trim(), lang: lang.value.trim(), label: label.value.trim(),
      source: source.value || null, interpreted: !!source.value && interpreted.checked,
    }));
  });
  return form;
}

function eventCard(ev, creds) {
  const path = `/v1/admin/events/${enc(ev.id)}`;
  const stored = ev.origin === "stored";
  const state = el("span", { class: "state-badge", "data-state": ev.state }, t(`admin.m.state.${ev.state}`));
  const card = el("section", { class: "card event-admin", "data-event": ev.id, "aria-label": ev.title || ev.id },
    el("h3", {}, ev.title || ev.id, " ", el("span", { class: "muted small" }, ev.id), " ", state),
    el("p", { class: "muted small" }, stored ? t("admin.m.stored") : t("admin.m.from_file"),
      ev.starts_at ? ` · ${t("admin.m.starts", { time: when(ev.starts_at) })}` : "",
      ev.ends_at ? ` · ${t("admin.m.ends", { time: when(ev.ends_at) })}` : ""),
    el("p", { class: "row-actions" },
      el("a", { href: ev.attendee_url }, t("admin.m.attendee_page")), " ",
      el("a", { href: ev.booth_url }, t("admin.m.booth_page")), " ",
      el("a", { href: ev.transcript_url }, t("admin.m.transcript_page"))));
  if (stored) {
    const actions = el("p", { class: "row-actions lifecycle" });
    if (ev.state === "scheduled") actions.append(button(t("admin.m.start"), () => api("POST", `${path}/start`, {}), { primary: true }));
    if (ev.state === "scheduled" || ev.state === "live") actions.append(button(t("admin.m.end"), () => api("POST", `${path}/end`, {}), { danger: true }));
    if (ev.state === "ended") actions.append(button(t("admin.m.archive"), () => api("POST", `${path}/archive`, {}), { danger: true }));
    const pub = el("input", { type: "checkbox", class: "publish-transcript", checked: ev.transcript_public });
    pub.addEventListener("change", () => act(() => api("PATCH", path, { transcript_public: pub.checked })));
    actions.append(el("label", { class: "check" }, pub, " ", t("admin.m.publish_transcript")));
    if (ev.state === "ended" || ev.state === "archived") {
      actions.append(button(t("admin.m.delete_transcripts"), () => api("DELETE", `${path}/transcripts`), { danger: true }));
    }
    actions.append(button(t("admin.m.delete_event"), () => api("DELETE", `${path}?force=1`), { danger: true }));
    card.append(actions, scheduleForm(ev, path));
  }
  for (const ch of ev.channels) card.append(channelBlock(ev, ch, creds.filter((c) => c.event === ev.id)));
  if (stored) card.append(addChannelForm(ev));
  return card;
}

function scheduleForm(ev, path) {
  const starts = el("input", { type: "datetime-local", name: "starts_at", value: localInput(ev.starts_at) });
  const ends = el("input", { type: "datetime-local", name: "ends_at", value: localInput(ev.ends_at) });
  const title = el("input", { name: "title", value: ev.title, maxlength: 200 });
  const form = el("form", { class: "inline schedule" }, field(t("admin.m.title"), title),
    field(t("admin.m.starts_at"), starts), field(t("admin.m.ends_at"), ends),
    el("button", { type: "submit", class: "btn small" }, t("admin.m.save")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const change = { title: title.value.trim() };
    if (!ev.state.match(/ended|archived/)) Object.assign(change, { starts_at: msOf(starts.value), ends_at: msOf(ends.value) });
    act(() => api("PATCH", path, change));
  });
  return form;
}

// ---- the whole screen -----------------------------------------------------------------------

/** Reads events and credentials and shows them (`force`: even if nothing changed). */
export async function refresh(force) {
  if (!token) return;
  // Never redraw under someone typing.
  if (!force && $("manage").contains(document.activeElement) && document.activeElement.tagName !== "BUTTON") return;
  try {
    const [events, creds] = await Promise.all([api("GET", "/v1/admin/events"), api("GET", "/v1/admin/credentials")]);
    const text = JSON.stringify([events, creds]);
    if (!force && text === rendered) return;
    rendered = text;
    $("event-list").replaceChildren(...events.events.map((ev) => eventCard(ev, creds.credentials)));
  } catch (e) {
    say(t("admin.m.refused", { message: e.message }));
  }
}

function wireNewEvent() {
  const form = $("new-event");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = (name) => form.elements[name].value.trim();
    act(async () => {
      await api("POST", "/v1/admin/events", {
        id: v("id"), title: v("title"), access_code: v("access_code") || null,
        starts_at: msOf(v("starts_at")), ends_at: msOf(v("ends_at")),
      });
      form.reset();
    });
  });
}

let wired = false;
/** Shows the screens for the admin token `value`. */
export function start(value) {
  token = value;
  rendered = "";
  if (!wired) {
    wired = true;
    wireNewEvent();
  }
  $("manage").hidden = false;
  refresh(true);
}

export function stop() {
  token = null;
  $("manage").hidden = true;
  $("event-list").replaceChildren();
  $("issued").hidden = true;
  $("issued").replaceChildren();
}
