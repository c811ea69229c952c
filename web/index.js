// Landing page: lists events and channels with live listener counts.
const root = document.getElementById("events");

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function refresh() {
  try {
    const res = await fetch("/v1/events", { cache: "no-store" });
    const { events } = await res.json();
    root.replaceChildren();
    for (const ev of events) {
      const section = el("section", { class: "event", "data-event": ev.id });
      section.append(el("h2", {}, ev.title || ev.id));
      const list = el("ul", { class: "channels" });
      for (const ch of ev.channels) {
        const li = el("li");
        const a = el("a", { href: `/e/${encodeURIComponent(ev.id)}?channel=${encodeURIComponent(ch.id)}`, lang: ch.lang === "auto" ? "" : ch.lang }, ch.label);
        li.append(a, el("span", { class: "count" }, ` ${ch.listeners} listening${ch.on_air ? " · on air" : ""}`));
        list.append(li);
      }
      section.append(list);
      root.append(section);
    }
  } catch (e) {
    root.textContent = "Could not load events; retrying…";
  }
}
refresh();
setInterval(refresh, 5000);
