// Attendee page: follows one channel, resumes with since= after any disconnect.
const event = decodeURIComponent(location.pathname.split("/")[2] || "");
const params = new URLSearchParams(location.search);
const log = document.getElementById("log");
const partial = document.getElementById("partial");
const conn = document.getElementById("conn");
const picker = document.getElementById("channel");
let channel = params.get("channel");
let lastSeq = null;
let ws = null;
let retry = 0;
const lines = new Map();

function setState(text) { conn.textContent = text; conn.dataset.state = text; }

function addLine(m) {
  const p = document.createElement("p");
  p.className = "line";
  p.dataset.seq = m.seq;
  if (m.lang && m.lang !== "und") p.lang = m.lang;
  p.textContent = m.text; // always text, never HTML
  log.append(p);
  lines.set(m.seq, p);
  p.scrollIntoView({ block: "end" });
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const since = lastSeq === null ? "" : `?since=${lastSeq}`;
  ws = new WebSocket(`${proto}://${location.host}/v1/events/${encodeURIComponent(event)}/channels/${encodeURIComponent(channel)}/listen${since}`);
  setState("connecting…");
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    switch (m.type) {
      case "hello":
        retry = 0;
        setState("live");
        if (m.reset) { log.replaceChildren(); lines.clear(); }
        break;
      case "line":
        if (lastSeq !== null && m.seq <= lastSeq) break;
        addLine(m);
        lastSeq = m.seq;
        break;
      case "edit": {
        if (lastSeq !== null && m.seq <= lastSeq) break;
        const p = lines.get(m.of);
        if (p) { p.textContent = m.text; p.classList.add("edited"); }
        lastSeq = m.seq;
        break;
      }
      case "partial":
        partial.textContent = m.text;
        break;
    }
  };
  ws.onclose = () => {
    setState("reconnecting…");
    const delay = Math.min(10000, 500 * 2 ** retry++) * (0.5 + Math.random() / 2);
    setTimeout(connect, delay);
  };
}

async function start() {
  const res = await fetch("/v1/events");
  const { events } = await res.json();
  const ev = events.find((e) => e.id === event);
  if (!ev) { setState("unknown event"); return; }
  for (const ch of ev.channels) {
    const o = document.createElement("option");
    o.value = ch.id; o.textContent = ch.label;
    picker.append(o);
  }
  if (!channel || !ev.channels.some((c) => c.id === channel)) channel = ev.channels[0].id;
  picker.value = channel;
  picker.onchange = () => {
    channel = picker.value; lastSeq = null; log.replaceChildren(); lines.clear(); partial.textContent = "";
    const u = new URL(location); u.searchParams.set("channel", channel); history.replaceState(null, "", u);
    if (ws) { ws.onclose = null; ws.close(); }
    connect();
  };
  connect();
}
start();
