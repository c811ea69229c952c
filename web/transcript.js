// The read-only transcript page of an event (/e/{event}/transcript): every channel's lines
// with corrections applied, a search over all of them, and each channel's download in every
// export format. Readable by anyone once the organiser publishes it; otherwise with the
// event's access code (the link carries it), like the attendee page.

import { channelPath, el, eventFromPath, labelOf, langAttr, dirOf } from "./common.js";
import { pick, t, use } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const event = eventFromPath();
const params = new URLSearchParams(location.search);
const CODE_KEY = `babelcast.code.${event}`;
const code = params.get("code") || sessionStorage.getItem(CODE_KEY) || "";
const FORMATS = ["txt", "vtt", "srt", "json"];
/** Every shown line: its element and its text in lower case, for the search. */
const shown = [];

function withCode(url) {
  if (!code) return url;
  return `${url}${url.includes("?") ? "&" : "?"}code=${encodeURIComponent(code)}`;
}

function say(key, vars) {
  const m = $("message");
  m.hidden = !key;
  if (key) m.textContent = t(key, vars);
}

/** One channel: its title, downloads and lines. */
async function channelSection(ch) {
  const lang = langAttr(ch.lang);
  const downloads = FORMATS.map((f) => el("a", {
    href: withCode(`${ch.transcript}?format=${f}`),
    download: `${event}-${ch.id}.${f}`,
  }, f.toUpperCase()));
  const list = el("div", { class: "tlines", lang, dir: dirOf(ch.lang) });
  const section = el("section", { class: "card tchannel", "data-channel": ch.id },
    el("h2", { lang }, labelOf(ch)),
    el("p", { class: "links" }, `${t("tpage.download")}: `, ...downloads.flatMap((a, i) => (i ? [" ", a] : [a]))),
    list);
  const res = await fetch(withCode(`${channelPath(event, ch.id, "transcript")}?format=json`), { cache: "no-store" });
  const body = res.ok ? await res.json() : { lines: [] };
  for (const line of body.lines) {
    const p = el("p", { class: "tline", "data-seq": String(line.seq), lang: langAttr(line.lang) || lang }, line.text);
    list.append(p);
    shown.push({ p, text: line.text, lower: line.text.toLowerCase() });
  }
  if (!body.lines.length) list.append(el("p", { class: "muted" }, t("tpage.empty")));
  return section;
}

/** Shows only the lines holding `q` (any case), the matches marked; all of them when empty. */
function search(q) {
  const needle = q.trim().toLowerCase();
  let n = 0;
  for (const s of shown) {
    const i = needle ? s.lower.indexOf(needle) : -1;
    s.p.hidden = !!needle && i < 0;
    if (i < 0) {
      s.p.replaceChildren(s.text);
      continue;
    }
    n += 1;
    // Text nodes only: caption text never becomes HTML.
    s.p.replaceChildren(s.text.slice(0, i), el("mark", {}, s.text.slice(i, i + needle.length)), s.text.slice(i + needle.length));
  }
  $("matches").textContent = needle ? t("tpage.matches", { n }) : "";
}

async function start() {
  await use(pick());
  if (params.get("code")) sessionStorage.setItem(CODE_KEY, code);
  const res = await fetch(withCode(`/v1/events/${encodeURIComponent(event)}/transcript`), { cache: "no-store" });
  if (res.status === 404) {
    say("error.no_event", { event });
    return;
  }
  if (!res.ok) {
    say("tpage.private");
    return;
  }
  const body = await res.json();
  $("event-title").textContent = `· ${body.title || body.event}`;
  document.title = `${t("tpage.title")} · ${body.title || body.event} · babelcast`;
  const sections = [];
  for (const ch of body.channels) sections.push(await channelSection(ch));
  $("channels").replaceChildren(...sections);
  say(null);
  $("search").addEventListener("input", (e) => search(e.target.value));
  $("search-form").addEventListener("submit", (e) => e.preventDefault());
}

start();
