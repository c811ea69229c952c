// Landing page: every event and channel with live listener counts and a QR code per event and
// per channel for the screen in the hall. Counts refresh in place every few seconds.

import { el, labelOf, langAttr, loadEvents } from "./common.js";

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
  card.append(
    el("div", { class: "event-head" },
      el("div", {},
        el("h2", {}, ev.title || ev.id),
        el("p", { class: "muted" }, el("span", { class: "total" }, ""), " · ",
          el("a", { href: `/booth/${enc(ev.id)}` }, "Booth console"))),
      el("a", { href: link, class: "qr-link", title: "Scan to follow this event" },
        qr(`/v1/events/${enc(ev.id)}/qr.svg`, `QR code for ${ev.title || ev.id}`))),
  );
  const list = el("ul", { class: "channels" });
  for (const ch of ev.channels) {
    const href = `${link}?channel=${enc(ch.id)}`;
    const details = el("details", { class: "qr-details" },
      el("summary", {}, "QR"),
      el("a", { href, title: `Scan for ${labelOf(ch)}` },
        qr(`/v1/events/${enc(ev.id)}/qr.svg?channel=${enc(ch.id)}`, `QR code for ${labelOf(ch)}`)));
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
    li.querySelector(".count").textContent = `${ch.listeners} listening`;
    const air = li.querySelector(".air");
    air.dataset.on = String(ch.on_air);
    air.textContent = ch.on_air ? "on air" : "";
  }
  card.querySelector(".total").textContent = `${total} listening`;
}

async function refresh() {
  try {
    const events = await loadEvents();
    root.removeAttribute("aria-busy");
    const ids = events.map((e) => e.id).join("\n");
    if (root.dataset.ids !== ids) {
      root.replaceChildren(...events.map(eventCard));
      root.dataset.ids = ids;
      if (!events.length) root.append(el("p", {}, "No events are configured."));
    }
    for (const ev of events) update(root.querySelector(`[data-event="${CSS.escape(ev.id)}"]`), ev);
    document.getElementById("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch {
    document.getElementById("updated").textContent = "Cannot reach the server; retrying…";
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
