// The ocpp-relay console: one page, four views (#/chargers, #/charger/ID, #/mirrors, #/relay). Everything a
// charger sent is shown as text (textContent), never as markup.
"use strict";

const main = () => document.getElementById("main");
let stopView = () => {};

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) { location.reload(); throw new Error("logged out"); }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function every(seconds, task) {
  let stopped = false;
  const run = async () => {
    if (stopped) return;
    try { await task(); } catch (error) { console.warn(error); }
    if (!stopped) timer = setTimeout(run, seconds * 1000);
  };
  let timer = setTimeout(run, 0);
  return () => { stopped = true; clearTimeout(timer); };
}

const clock = (ms) => new Date(ms).toISOString().slice(11, 23);
const since = (iso) => iso ? new Date(iso).toLocaleString() : "—";
const globToRegex = (text) => new RegExp("^" + text.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$", "i");

// MARK: Chargers

function chargersView() {
  const filter = el("input", { id: "filter", placeholder: "filter: CP-* or an id", value: sessionStorage.filter || "" });
  const count = el("span", { class: "muted", id: "count" });
  const body = el("tbody");
  main().replaceChildren(
    el("h1", {}, "Chargers connected now"),
    el("div", { class: "toolbar" }, filter, count),
    el("table", { id: "chargers" },
      el("thead", {}, el("tr", {}, ["Charger", "Versions", "Route", "Upstream", "Mirrors", "Connected since", "In", "Out", "Last message"].map((h) => el("th", {}, h)))),
      body));
  let chargers = [];
  const render = () => {
    const text = filter.value.trim();
    sessionStorage.filter = text;
    const pattern = text ? (text.includes("*") ? globToRegex(text) : null) : null;
    const shown = chargers.filter((c) => !text || (pattern ? pattern.test(c.identity) : c.identity.toLowerCase().includes(text.toLowerCase())));
    count.textContent = `${shown.length} of ${chargers.length}`;
    body.replaceChildren(...shown.map((c) => el("tr", { "data-charger": c.identity },
      el("td", {}, el("a", { href: `#/charger/${encodeURIComponent(c.identity)}` }, c.identity)),
      el("td", {}, c.chargerVersion || "?", c.translated ? el("span", { class: "badge translated" }, `→ ${c.upstreamVersion}`) : null),
      el("td", { class: "muted" }, c.route),
      el("td", {}, c.upstream),
      el("td", {}, c.mirrors.length ? c.mirrors.map((m) => el("span", { title: m.mode }, el("span", { class: `dot ${m.connected ? "up" : "down"}` }), m.name, " ")) : "—"),
      el("td", {}, since(c.connectedSince)),
      el("td", { class: "num" }, c.messagesIn),
      el("td", { class: "num" }, c.messagesOut),
      el("td", {}, c.lastMessage ? `${since(c.lastMessage)}${c.lastAction ? " · " + c.lastAction : ""}` : "—"))));
  };
  filter.addEventListener("input", render);
  return every(1, async () => { chargers = await api("/api/chargers"); render(); });
}

// MARK: One charger

function chargerView(identity, wanted) {
  const state = { paused: false, held: [], rows: new Map(), calls: new Map(), dropped: 0, filter: "" };
  const pause = el("button", { id: "pause" }, "Pause");
  const filter = el("input", { id: "action-filter", placeholder: "filter by action" });
  const source = el("select", { id: "source" }, el("option", { value: "live" }, "Live"));
  const banner = el("div", { class: "banner", id: "dropped", hidden: true });
  const body = el("tbody", { id: "frame-rows" });
  const table = el("table", { class: "frames", id: "frames" },
    el("thead", {}, el("tr", {}, el("th", {}, "Time"), el("th", {}, "Charger ⇄ relay"), el("th", {}, "Relay ⇄ upstream and mirrors"))), body);
  main().replaceChildren(
    el("h1", {}, identity),
    el("div", { class: "toolbar" }, source, pause, filter, el("span", { class: "muted", id: "status" }, "watching live")),
    banner, table);

  const matches = (action) => !state.filter || (action || "").toLowerCase().includes(state.filter);
  const frameBox = (event, translated) => {
    const type = event.messageType;
    const meta = [];
    meta.push(`${event.leg} ${event.direction === "in" ? "→ relay" : "← relay"}${event.forwarded ? " · forwarded" : ""}`);
    if (event.action) meta.push(event.action + (type === 3 ? " result" : type === 4 ? " error" : ""));
    const call = event.messageId && state.calls.get(`${event.connection}/${event.messageId}`);
    if ((type === 3 || type === 4) && call) meta.push(`answered in ${event.time - call} ms`);
    if (type === 2 && event.messageId) state.calls.set(`${event.connection}/${event.messageId}`, event.time);
    const highlight = wanted.message && event.messageId === wanted.message ? " highlight" : "";
    return el("div", { class: `frame${type === 4 ? " error" : ""}${translated ? " translated" : ""}${highlight}`, "data-action": event.action || "", "data-leg": event.leg, "data-message-id": event.messageId || "" },
      el("span", { class: "meta" }, meta.join(" · ")), event.text);
  };
  const leftLeg = (event) => event.leg === "charger";
  const add = (event) => {
    if (event.kind !== "frame") {
      body.append(el("tr", { class: `row ${event.kind}` }, el("td", { class: "time" }, clock(event.time)),
        el("td", { colspan: 2 }, el("span", { class: "event" }, `${event.kind} · ${event.leg}`), " ", event.text)));
      return;
    }
    if (!matches(event.action)) return;
    const causeRow = event.cause !== undefined && state.rows.get(`${event.connection}/${event.cause}`);
    if (causeRow && causeRow.leftLeg !== leftLeg(event) && event.direction === "out") {
      // A translation (or a forwarded answer's counterpart): next to what caused it.
      causeRow.cells[leftLeg(event) ? 0 : 1].append(frameBox(event, true));
      return;
    }
    const cells = [el("td", { class: "cell charger" }), el("td", { class: "cell upstream" })];
    cells[leftLeg(event) ? 0 : 1].append(frameBox(event, false));
    if (event.forwarded) cells[leftLeg(event) ? 1 : 0].append(el("div", { class: "muted" }, "forwarded unchanged"));
    body.append(el("tr", { class: "row frame" }, el("td", { class: "time" }, clock(event.time)), ...cells));
    state.rows.set(`${event.connection}/${event.number}`, { cells, leftLeg: leftLeg(event) });
  };

  let stream = null;
  const live = () => {
    body.replaceChildren(); state.rows.clear(); state.calls.clear();
    stream = new EventSource(`/api/chargers/${encodeURIComponent(identity)}/events`);
    stream.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (state.paused) state.held.push(event); else add(event);
    };
    stream.addEventListener("dropped", (message) => {
      state.dropped = JSON.parse(message.data).dropped;
      banner.hidden = false;
      banner.textContent = `${state.dropped} frames were not shown: this page did not keep up with the charger.`;
    });
  };
  const past = async (connection) => {
    stream?.close(); stream = null;
    body.replaceChildren(); state.rows.clear(); state.calls.clear();
    const entries = (await api(`/api/chargers/${encodeURIComponent(identity)}/history`)).filter((e) => e.connection === connection);
    let number = 0;
    for (const entry of entries) {
      number += 1;
      const time = Date.parse(entry.time);
      if (entry.event) {
        add({ kind: entry.event === "open" ? "open" : entry.event === "close" ? "close" : "note", time, leg: entry.leg || "charger", text: entry.reason || entry.message || entry.event });
        continue;
      }
      let type; let id;
      try { const frame = JSON.parse(entry.text); type = frame[0]; id = frame[1]; } catch { }
      add({ kind: "frame", time, connection, number, leg: entry.leg === "mirror" ? `mirror:${entry.mirror}` : entry.leg, direction: entry.dir, text: entry.text, action: entry.action, messageType: type, messageId: id, cause: entry.dir === "out" ? number - 1 : undefined });
    }
  };
  source.addEventListener("change", () => { if (source.value === "live") live(); else past(source.value); });
  pause.addEventListener("click", () => {
    state.paused = !state.paused;
    pause.textContent = state.paused ? "Resume" : "Pause";
    document.getElementById("status").textContent = state.paused ? "paused" : "watching live";
    if (!state.paused) { state.held.forEach(add); state.held = []; }
  });
  filter.addEventListener("input", () => { state.filter = filter.value.trim().toLowerCase(); });
  api(`/api/chargers/${encodeURIComponent(identity)}/history`).then(async (entries) => {
    for (const open of entries.filter((e) => e.event === "open")) {
      source.append(el("option", { value: open.connection }, `recorded: ${since(open.time)} (${open.connection})`));
    }
    if (wanted.connection) {
      // Opened from a divergence: that connection, scrolled to the message.
      source.value = wanted.connection;
      await past(wanted.connection);
      document.querySelector(".frame.highlight")?.scrollIntoView({ block: "center" });
    }
  }).catch(() => {});
  if (!wanted.connection) live();
  return () => stream?.close();
}

// MARK: Mirrors

function mirrorsView() {
  const body = el("tbody", { id: "mirror-rows" });
  const list = el("div", { id: "divergences" });
  main().replaceChildren(
    el("h1", {}, "Mirrors: answers compared with the upstream's"),
    el("table", {}, el("thead", {}, el("tr", {}, ["Mirror", "Action", "Matched", "Diverged", "Unanswered", "Dropped"].map((h) => el("th", {}, h)))), body),
    el("h2", {}, "Latest divergences"), list);
  const open = new Set();
  return every(2, async () => {
    const report = await api("/api/mirrors");
    body.replaceChildren(...report.rows.map((r) => el("tr", { "data-mirror": r.mirror, "data-action": r.action },
      el("td", {}, r.mirror), el("td", {}, r.action), el("td", { class: "num" }, r.matched),
      el("td", { class: `num${r.diverged ? " bad" : ""}` }, r.diverged), el("td", { class: "num" }, r.unanswered), el("td", { class: "num" }, r.dropped))));
    if (!report.rows.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No mirror has answered yet.")));
    list.replaceChildren(...report.divergences.map((d) => {
      const key = `${d.connection}/${d.messageId}/${d.mirror}`;
      const box = el("div", { class: `divergence${open.has(key) ? " open" : ""}`, "data-charger": d.charger, "data-action": d.action },
        el("div", {}, el("strong", {}, d.action), ` · ${d.mirror} · `, el("a", { href: `#/charger/${encodeURIComponent(d.charger)}` }, d.charger), " · ",
          el("a", { class: "message-link", href: `#/charger/${encodeURIComponent(d.charger)}?connection=${encodeURIComponent(d.recorded)}&message=${encodeURIComponent(d.messageId)}` }, `message ${d.messageId}`),
          ` · ${since(d.time)}`),
        el("div", { class: "details" }, el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Field"), el("th", {}, "Upstream"), el("th", {}, "Mirror"))),
          el("tbody", {}, d.differences.map((x) => el("tr", {}, el("td", {}, x.path || "(message)"), el("td", {}, x.primary), el("td", {}, x.mirror)))))));
      box.addEventListener("click", (e) => { if (e.target.tagName === "A") return; box.classList.toggle("open"); if (box.classList.contains("open")) open.add(key); else open.delete(key); });
      return box;
    }));
    if (!report.divergences.length) list.append(el("p", { class: "muted" }, "No divergence so far."));
  });
}

// MARK: Relay

function chart(series) {
  let points = series.points;
  if (series.type === "counter") {
    points = points.slice(1).map((p, i) => [p[0], Math.max(0, (p[1] - points[i][1]) / Math.max(1, p[0] - points[i][0]))]);
  }
  const last = points.length ? points[points.length - 1][1] : 0;
  const total = series.points.length ? series.points[series.points.length - 1][1] : 0;
  const max = Math.max(1e-9, ...points.map((p) => p[1]));
  const t0 = points.length ? points[0][0] : 0; const t1 = points.length ? points[points.length - 1][0] : 1;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 100 30"); svg.setAttribute("preserveAspectRatio", "none");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.map((p) => `${((p[0] - t0) / Math.max(1, t1 - t0)) * 100},${30 - (p[1] / max) * 28}`).join(" "));
  svg.append(line);
  return { svg, last, total };
}

function relayView() {
  const cards = el("div", { class: "cards", id: "relay-cards" });
  const charts = el("div", { class: "cards", id: "charts" });
  const configuration = el("tbody", { id: "configuration" });
  main().replaceChildren(el("h1", {}, "Relay"), cards,
    el("h2", {}, "The last hour (Prometheus figures; counters per second)"), charts,
    el("h2", {}, "Configuration in force (secrets hidden)"), el("table", {}, configuration));
  return every(5, async () => {
    const [relay, metrics] = await Promise.all([api("/api/relay"), api("/api/metrics")]);
    const hours = Math.floor(relay.uptimeSeconds / 3600); const minutes = Math.floor(relay.uptimeSeconds / 60) % 60;
    cards.replaceChildren(
      el("div", { class: "card" }, el("div", { class: "label" }, "Uptime"), el("div", { class: "value", id: "uptime" }, `${hours} h ${minutes} min ${relay.uptimeSeconds % 60} s`)),
      el("div", { class: "card" }, el("div", { class: "label" }, "Started"), el("div", { class: "value" }, since(relay.startedAt))),
      el("div", { class: "card" }, el("div", { class: "label" }, "Version · run"), el("div", { class: "value" }, `${relay.version} · ${relay.runID}`)));
    configuration.replaceChildren(...relay.configuration.map(([key, value]) => el("tr", {}, el("th", {}, key), el("td", {}, value))));
    const names = Object.keys(metrics).filter((n) => metrics[n].points.length).sort();
    charts.replaceChildren(...names.map((name) => {
      const series = metrics[name]; const { svg, last, total } = chart(series);
      const value = series.type === "counter" ? `${Number(total.toFixed(2))} · ${Number(last.toFixed(2))}/s` : Number(last.toFixed(2));
      return el("div", { class: "card chart", "data-metric": name, title: series.help },
        el("div", { class: "label" }, name.replace(/^ocpp_relay_/, "")), el("div", { class: "value" }, value), svg);
    }));
  });
}

// MARK: Routing

function route() {
  stopView();
  const [hash, query] = (location.hash || "#/chargers").split("?");
  const wanted = Object.fromEntries(new URLSearchParams(query || ""));
  const [, page, ...rest] = hash.split("/");
  for (const link of document.querySelectorAll("header nav a")) link.classList.toggle("active", link.dataset.page === page || (page === "charger" && link.dataset.page === "chargers"));
  if (page === "charger" && rest.length) stopView = chargerView(decodeURIComponent(rest.join("/")), wanted);
  else if (page === "mirrors") stopView = mirrorsView();
  else if (page === "relay") stopView = relayView();
  else stopView = chargersView();
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  api("/api/session").then((s) => { document.getElementById("user").textContent = s.user; }).catch(() => {});
  route();
});
