// Landing page: every event and channel with live listener counts, a QR code per event and
// per channel for the screen in the hall, and the event's link written out for those who type
// it. Counts refresh in place every few seconds.

import { el, labelOf, langAttr, loadEvents } from "./common.js";
import { t, use } from "./i18n.js";

/** How often listener counts refresh. */
const REFRESH_MS = 5000;
const root = document.getElementById("events");
const enc = encodeURIComponent;

function qr(src, alt) {
  return el("img", { class: "qr", src, alt, width: 160, height: 160, loading: "lazy" });
}

function eventCard(ev) {
  const card = el("section", { class: "event card", "data-event": ev.id });
  const link = `/e/${enc(ev.id)}`;
  const name = ev.title || ev.id;
  card.append(
    el("div", { class: "event-head" },
      el("div", {},
        el("h2", {}, name),
        el("p", { class: "muted" }, el("span", { class: "total" }, ""), " · ",
          el("a", { href: `/booth/${enc(ev.id)}` }, t("index.booth")), " · ",
          el("a", { href: `${link}/display` }, t("index.display"))),
        // What the QR code encodes, for those who type it (a phone on the venue's network).
        el("p", { class: "typed-link" }, `${t("index.or_open")} `, el("a", { href: ev.url, class: "url" }, ev.url.replace(/^https?:\/\//, "")))),
      el("a", { href: link, class: "qr-link", "aria-label": t("index.scan", { name }) },
        qr(`/v1/events/${enc(ev.id)}/qr.svg`, t("index.qr_alt", { name })))),
  );
  const list = el("ul", { class: "channels" });
  for (const ch of ev.channels) {
    const href = `${link}?channel=${enc(ch.id)}`;
    const details = el("details", { class: "qr-details" },
      el("summary", {}, t("index.qr")),
      el("a", { href, "aria-label": t("index.scan", { name: labelOf(ch) }) },
        qr(`/v1/events/${enc(ev.id)}/qr.svg?channel=${enc(ch.id)}`, t("index.qr_alt", { name: labelOf(ch) }))));
    list.append(el("li", { "data-channel": ch.id },
      el("a", { href, class: "chan", lang: langAttr(ch.lang) }, labelOf(ch)),
      el("span", { class: "air", "data-on": "false" }, ""),
      el("span", { class: "count" }, ""),
      details));
  }
  card.append(list);
  return card;
}

function update(card, ev) {
  let total = 0;
  for (const ch of ev.channels) {
    total += ch.listeners;
    const li = card.querySelector(`li[data-channel="${CSS.escape(ch.id)}"]`);
    if (!li) continue;
    li.querySelector(".count").textContent = t("listening", { n: ch.listeners });
    const air = li.querySelector(".air");
    air.dataset.on = String(ch.on_air);
    air.textContent = ch.on_air ? t("index.on_air") : "";
  }
  card.querySelector(".total").textContent = t("listening", { n: total });
}

async function refresh() {
  try {
    const events = await loadEvents();
    root.removeAttribute("aria-busy");
    const ids = events.map((e) => e.id).join("\n");
    if (root.dataset.ids !== ids) {
      root.replaceChildren(...events.map(eventCard));
      root.dataset.ids = ids;
      if (!events.length) root.append(el("p", {}, t("index.none")));
    }
    for (const ev of events) update(root.querySelector(`[data-event="${CSS.escape(ev.id)}"]`), ev);
    document.getElementById("updated").textContent = t("index.updated", { time: new Date().toLocaleTimeString() });
  } catch {
    document.getElementById("updated").textContent = t("index.unreachable");
  }
}

await use("en");
refresh();
setInterval(refresh, REFRESH_MS);
