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

const leftHow = (last) => last && last.closedBy
  ? `closed by ${last.closedBy}${last.closeCode ? ` (${last.closeCode}${last.closeReason ? " " + last.closeReason : ""})` : ""}`
  : "relay stopped without a close";
const chargerLink = (identity) => `#/charger/${encodeURIComponent(identity)}`;

function chargersView() {
  const filter = el("input", { id: "filter", placeholder: "filter: CP-* or an id", value: sessionStorage.filter || "" });
  const which = el("select", { id: "which" }, el("option", { value: "connected" }, "Connected now"), el("option", { value: "all" }, "Connected and recently seen"));
  which.value = sessionStorage.which || "connected";
  const count = el("span", { class: "muted", id: "count" });
  const body = el("tbody");
  const title = el("h1", {}, "Chargers");
  main().replaceChildren(
    title,
    el("div", { class: "toolbar" }, which, filter, count),
    el("table", { id: "chargers", class: "chargers" },
      el("colgroup", {}, ["identity", "versions", "route", "upstream", "mirrors", "since", "in", "out", "last"].map((c) => el("col", { class: `c-${c}` }))),
      el("thead", {}, el("tr", {}, ["Charger", "Versions", "Route", "Upstream", "Mirrors", "Connected since / left", "In", "Out", "Last message"].map((h) => el("th", {}, h)))),
      body));
  let rows = [];
  const clip = (text) => el("td", { class: "clip", title: text || "" }, text || "—");
  const render = () => {
    const text = filter.value.trim();
    sessionStorage.filter = text;
    const pattern = text ? (text.includes("*") ? globToRegex(text) : null) : null;
    const shown = rows.filter((r) => !text || (pattern ? pattern.test(r.identity) : r.identity.toLowerCase().includes(text.toLowerCase())));
    const connected = rows.filter((r) => r.connected).length;
    count.textContent = `${shown.length} shown · ${connected} connected${which.value === "all" ? ` · ${rows.length - connected} seen recently` : ""}`;
    body.replaceChildren(...shown.map((r) => {
      const c = r.live;
      if (c) {
        return el("tr", { "data-charger": r.identity, class: "connected" },
          el("td", { class: "clip", title: r.identity }, el("a", { href: chargerLink(r.identity) }, r.identity)),
          el("td", { class: "nowrap" }, c.chargerVersion || "?", c.translated ? el("span", { class: "badge translated" }, `→ ${c.upstreamVersion}`) : null),
          clip(c.route),
          c.upstreamRedialingSince
            ? el("td", { class: "clip", title: c.upstream }, c.upstream, el("span", { class: "badge grace", title: "the upstream was lost; the charger is kept while it is dialled again (timeouts.reconnect_grace)" }, `redialling since ${since(c.upstreamRedialingSince)}`))
            : clip(c.upstream),
          el("td", { class: "clip" }, c.mirrors.length ? c.mirrors.map((m) => el("span", { title: m.mode }, el("span", { class: `dot ${m.connected ? "up" : "down"}` }), m.name, " ")) : "—"),
          el("td", { class: "nowrap" }, since(c.connectedSince)),
          el("td", { class: "num" }, c.messagesIn),
          el("td", { class: "num" }, c.messagesOut),
          el("td", { class: "clip" }, c.lastMessage ? `${since(c.lastMessage)}${c.lastAction ? " · " + c.lastAction : ""}` : "—"));
      }
      const last = r.last || {};
      return el("tr", { "data-charger": r.identity, class: "left" },
        el("td", { class: "clip", title: r.identity }, el("a", { href: chargerLink(r.identity) }, r.identity), el("span", { class: "badge gone" }, "disconnected")),
        el("td", { class: "nowrap" }, last.version || "?"),
        el("td", { class: "muted" }, "—"), el("td", { class: "muted" }, "—"), el("td", { class: "muted" }, "—"),
        el("td", { class: "left-how", title: leftHow(last) }, `left ${since(last.end || last.lastSeen)}`, el("div", { class: "muted small" }, leftHow(last))),
        el("td", { class: "num muted" }, "—"), el("td", { class: "num muted" }, "—"),
        el("td", { class: "clip", title: `${last.messages ?? 0} messages` }, el("a", { href: `${chargerLink(r.identity)}?connection=${encodeURIComponent(last.key || "")}` }, "history"), ` · ${last.messages ?? 0} messages`));
    }));
  };
  filter.addEventListener("input", render);
  let stop = () => {};
  const poll = () => {
    stop();
    sessionStorage.which = which.value;
    title.textContent = which.value === "all" ? "Chargers connected and recently seen" : "Chargers connected now";
    stop = every(which.value === "all" ? 5 : 1, async () => { rows = await api(`/api/chargers${which.value === "all" ? "?all=1" : ""}`); render(); });
  };
  which.addEventListener("change", poll);
  poll();
  return () => stop();
}

// MARK: One charger

function chargerView(identity, wanted) {
  const state = { paused: false, held: [], rows: new Map(), boxes: new Map(), calls: new Map(), chargerCalls: new Map(), mirrorRows: new Map(), waiting: new Map(), dropped: 0, filter: "", recorded: null, step: -1 };
  const pause = el("button", { id: "pause" }, "Pause");
  const previous = el("button", { id: "step-previous", hidden: true, title: "previous frame" }, "◀ Previous");
  const next = el("button", { id: "step-next", hidden: true, title: "next frame" }, "Next ▶");
  const filter = el("input", { id: "action-filter", placeholder: "filter by action" });
  const source = el("select", { id: "source" }, el("option", { value: "live" }, "Live"));
  const banner = el("div", { class: "banner", id: "dropped", hidden: true });
  const presence = el("div", { class: "presence", id: "presence" });
  const status = el("span", { class: "muted", id: "status" }, "watching live");
  const body = el("tbody", { id: "frame-rows" });
  const table = el("table", { class: "frames", id: "frames" },
    el("thead", {}, el("tr", {}, el("th", {}, "Time"), el("th", {}, "Charger ⇄ relay"), el("th", {}, "Relay ⇄ upstream and mirrors"))), body);
  main().replaceChildren(
    el("h1", {}, identity),
    presence,
    el("div", { class: "toolbar" }, source, pause, previous, next, filter, status),
    banner, table);

  const rowMatches = (row) => !state.filter || [...row.querySelectorAll(".frame")].some((f) => (f.dataset.action || "").toLowerCase().includes(state.filter));
  const applyFilter = (row) => { if (row.classList.contains("frame")) row.hidden = !rowMatches(row); };
  const frameBox = (event, translated) => {
    const type = event.messageType;
    const meta = [];
    meta.push(`${event.leg} ${event.direction === "in" ? "→ relay" : "← relay"}${event.forwarded ? " · forwarded" : ""}`);
    if (event.action) meta.push(event.action + (type === 3 ? " result" : type === 4 ? " error" : ""));
    const call = event.messageId && state.calls.get(`${event.connection}/${event.leg}/${event.messageId}`);
    if ((type === 3 || type === 4) && call) meta.push(`answered in ${event.time - call} ms`);
    if (type === 2 && event.messageId) state.calls.set(`${event.connection}/${event.leg}/${event.messageId}`, event.time);
    const highlight = wanted.message && event.messageId === wanted.message ? " highlight" : "";
    const box = el("div", { class: `frame${type === 4 ? " error" : ""}${translated ? " translated" : ""}${highlight}`, "data-action": event.action || "", "data-leg": event.leg, "data-message-id": event.messageId || "" },
      el("span", { class: "meta" }, meta.join(" · ")), event.text);
    state.boxes.set(verdictKey(event), box);
    return box;
  };
  // A frame as its verdict names it: by connection, leg, direction and recorded time (live); a recorded verdict
  // follows its frame, the latest of its leg and direction.
  const verdictKey = (event) => `${event.connection}/${event.leg}/${event.direction}` + (event.recordedAt ? `/${event.recordedAt}` : "");
  // An invalid frame: marked with what is wrong.
  const markInvalid = (event) => {
    const box = state.boxes.get(verdictKey(event));
    if (!box) return false;
    box.classList.add("invalid");
    box.append(el("span", { class: "verdict" }, `✗ invalid ${event.text}`));
    return true;
  };
  const leftLeg = (event) => event.leg === "charger";
  const isMirror = (event) => event.leg.startsWith("mirror:");
  // A mirror's frames sit in the row of the charger frame they copy (collapsed: they double the list otherwise).
  const mirrorBox = (row, event) => {
    const name = event.leg.slice("mirror:".length);
    let box = row.mirrors.get(name);
    if (!box) {
      box = { count: el("span", {}), details: el("details", { class: "mirror-frames", "data-mirror": name }) };
      box.details.append(el("summary", {}, `mirror ${name}: `, box.count));
      row.cells[1].append(box.details);
      row.mirrors.set(name, box);
    }
    box.details.append(frameBox(event, false));
    box.count.textContent = `${box.details.querySelectorAll(".frame").length} frames`;
    applyFilter(row.element);
  };
  const placeMirror = (event) => {
    const key = `${event.connection}/${event.messageId}`;
    // By message id first (a mirror's copy keeps the charger's; a copy queued while the mirror connected is sent
    // later), then by the cause the relay gave it.
    const row = state.mirrorRows.get(key) || state.chargerCalls.get(key) || (event.cause !== undefined && state.rows.get(`${event.connection}/${event.cause}`));
    if (row) {
      if (event.messageId) state.mirrorRows.set(key, row);
      mirrorBox(row, event);
      return true;
    }
    return false;
  };
  let refreshPresence = () => {};
  const add = (event) => {
    if (event.kind === "verdict" && markInvalid(event)) return;
    if (event.kind !== "frame") {
      // The charger came or went: say so now, not at the next poll.
      if (!state.recorded && (event.kind === "open" || event.kind === "close")) setTimeout(() => refreshPresence(), 300);
      body.append(el("tr", { class: `row ${event.kind}` }, el("td", { class: "time" }, clock(event.time)),
        el("td", { colspan: 2 }, el("span", { class: "event" }, `${event.kind} · ${event.leg}`), " ", event.text)));
      return;
    }
    if (isMirror(event)) {
      if (placeMirror(event)) return;
      // Its original has not reached the page yet: it waits for it (by cause, or by message id).
      const waitKey = event.cause !== undefined ? `${event.connection}/#${event.cause}` : `${event.connection}/${event.messageId}`;
      state.waiting.set(waitKey, [...(state.waiting.get(waitKey) || []), event]);
      return;
    }
    const causeRow = event.cause !== undefined && state.rows.get(`${event.connection}/${event.cause}`);
    if (causeRow && causeRow.leftLeg !== leftLeg(event) && event.direction === "out") {
      // A translation (or a forwarded answer's counterpart): next to what caused it.
      causeRow.cells[leftLeg(event) ? 0 : 1].append(frameBox(event, true));
      applyFilter(causeRow.element);
      return;
    }
    const cells = [el("td", { class: "cell charger" }), el("td", { class: "cell upstream" })];
    cells[leftLeg(event) ? 0 : 1].append(frameBox(event, false));
    if (event.forwarded) cells[leftLeg(event) ? 1 : 0].append(el("div", { class: "muted" }, "forwarded unchanged"));
    const element = el("tr", { class: "row frame" }, el("td", { class: "time" }, clock(event.time)), ...cells);
    body.append(element);
    const row = { cells, leftLeg: leftLeg(event), element, mirrors: new Map() };
    state.rows.set(`${event.connection}/${event.number}`, row);
    if (event.leg === "charger" && event.messageId && event.messageType === 2) state.chargerCalls.set(`${event.connection}/${event.messageId}`, row);
    applyFilter(element);
    for (const key of [`${event.connection}/#${event.number}`, `${event.connection}/${event.messageId}`]) {
      const waiting = state.waiting.get(key);
      if (!waiting) continue;
      state.waiting.delete(key);
      waiting.forEach((m) => mirrorBox(row, m));
    }
  };
  const reset = () => {
    body.replaceChildren();
    for (const map of [state.rows, state.boxes, state.calls, state.chargerCalls, state.mirrorRows, state.waiting]) map.clear();
    state.step = -1;
  };

  let stream = null;
  const live = () => {
    reset();
    state.recorded = null;
    pause.hidden = false; previous.hidden = true; next.hidden = true;
    status.textContent = state.paused ? "paused" : "watching live";
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
  const connections = new Map();
  const describe = (c) => `recorded ${since(c.start)} – ${c.end ? since(c.end) : "(no close recorded)"} · ${c.messages} frames · relay ${c.runID}`;
  const past = async (key) => {
    stream?.close(); stream = null;
    reset();
    state.recorded = key;
    pause.hidden = true; previous.hidden = false; next.hidden = false;
    const summary = connections.get(key);
    status.textContent = summary ? describe(summary) : `recorded connection ${key}`;
    const entries = (await api(`/api/chargers/${encodeURIComponent(identity)}/history`)).filter((e) => e.connection === key);
    let number = 0;
    for (const entry of entries) {
      number += 1;
      const time = Date.parse(entry.time);
      if (entry.event === "verdict") {
        add({ kind: "verdict", time, connection: key, leg: entry.frame.leg, direction: entry.frame.dir, text: `${entry.action}: ${entry.reasons.join("; ")}` });
        continue;
      }
      if (entry.event) {
        add({ kind: entry.event === "open" ? "open" : entry.event === "close" ? "close" : "note", time, leg: entry.leg || "charger", text: entry.reason || entry.message || entry.event });
        continue;
      }
      let type; let id;
      try { const frame = JSON.parse(entry.text); type = frame[0]; id = frame[1]; } catch { }
      const leg = entry.leg === "mirror" ? `mirror:${entry.mirror}` : entry.leg;
      // A mirror's frames are placed by message id: the recording writes a mirror's copy before its original.
      const cause = entry.dir === "out" && entry.leg !== "mirror" ? number - 1 : undefined;
      add({ kind: "frame", time, connection: key, number, leg, direction: entry.dir, forwarded: entry.forwarded === true, text: entry.text, action: entry.action, messageType: type, messageId: id, cause });
    }
  };
  const step = (by) => {
    const frames = [...body.querySelectorAll("tr.row.frame:not([hidden]) .frame")].filter((f) => !f.closest("details:not([open])"));
    if (!frames.length) return;
    frames[state.step]?.classList.remove("current");
    state.step = Math.max(0, Math.min(frames.length - 1, state.step + by));
    frames[state.step].classList.add("current");
    frames[state.step].scrollIntoView({ block: "center" });
    status.textContent = `${describe(connections.get(state.recorded) || { start: "", messages: frames.length, runID: "?" })} · frame ${state.step + 1} of ${frames.length}`;
  };
  previous.addEventListener("click", () => step(-1));
  next.addEventListener("click", () => step(1));
  source.addEventListener("change", () => { if (source.value === "live") live(); else past(source.value); });
  pause.addEventListener("click", () => {
    state.paused = !state.paused;
    pause.textContent = state.paused ? "Resume" : "Pause";
    status.textContent = state.paused ? "paused" : "watching live";
    if (!state.paused) { state.held.forEach(add); state.held = []; }
  });
  filter.addEventListener("input", () => {
    state.filter = filter.value.trim().toLowerCase();
    body.querySelectorAll("tr.row.frame").forEach(applyFilter);
  });
  const showPresence = (page) => {
    const latest = page.connections[0];
    presence.className = `presence ${page.connected ? "up" : "down"}`;
    presence.replaceChildren(
      el("span", { class: `dot ${page.connected ? "up" : "down"}` }),
      page.connected
        ? `connected since ${since(page.live.connectedSince)}`
        : latest
          ? `disconnected since ${since(latest.end || latest.lastSeen)} · ${leftHow(latest)}`
          : "disconnected · never seen in the recordings");
  };
  let first = true;
  refreshPresence = async () => {
    const page = await api(`/api/chargers/${encodeURIComponent(identity)}`);
    showPresence(page);
    for (const c of page.connections) {
      if (connections.has(c.key)) { connections.get(c.key).end = c.end; continue; }
      connections.set(c.key, c);
    }
    const chosen = source.value;
    source.replaceChildren(el("option", { value: "live" }, page.connected ? "Live" : "Live (disconnected)"),
      ...[...connections.values()].sort((a, b) => (a.start < b.start ? 1 : -1)).map((c) => el("option", { value: c.key }, describe(c))));
    source.value = chosen;
    if (first) {
      first = false;
      if (wanted.connection) {
        if (!connections.has(wanted.connection)) source.append(el("option", { value: wanted.connection }, `recorded connection ${wanted.connection}`));
        // Opened from a divergence or the chargers page: that connection, scrolled to the message.
        source.value = wanted.connection;
        await past(wanted.connection);
        document.querySelector(".frame.highlight")?.scrollIntoView({ block: "center" });
      }
    }
  };
  const stopPresence = every(3, () => refreshPresence());
  if (!wanted.connection) live();
  return () => { stream?.close(); stopPresence(); };
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

// MARK: Verdicts

function verdictsView() {
  const summary = el("p", { id: "verdict-summary", class: "muted" });
  const body = el("tbody", { id: "verdict-rows" });
  const list = el("div", { id: "invalid-frames" });
  main().replaceChildren(
    el("h1", {}, "Verdicts: frames judged against their version's schema"), summary,
    el("table", {}, el("thead", {}, el("tr", {}, ["Sender", "Action", "Frames", "Invalid", "Most frequent reasons"].map((h) => el("th", {}, h)))), body),
    el("h2", {}, "Latest invalid frames"), list);
  const sender = (r) => r.side === "backend" ? `backend ${r.vendor} (OCPP ${r.version})` : `${r.vendor} / ${r.model} / ${r.firmware} (OCPP ${r.version}) · ${r.chargers} charger${r.chargers === 1 ? "" : "s"}`;
  return every(3, async () => {
    const report = await api("/api/verdicts");
    summary.textContent = `${report.frames} frames judged since the relay started, ${report.invalid} invalid.`;
    const rows = report.rows.slice().sort((a, b) => b.invalid - a.invalid);
    body.replaceChildren(...rows.map((r) => el("tr", { "data-model": r.model, "data-firmware": r.firmware, "data-action": r.action },
      el("td", {}, sender(r)), el("td", {}, r.action), el("td", { class: "num" }, r.frames),
      el("td", { class: `num${r.invalid ? " bad" : ""}` }, r.invalid),
      el("td", { class: "small" }, ...r.reasons.map((x) => el("div", {}, `${x.count}× ${x.reason} · e.g. `,
        el("a", { href: `#/charger/${encodeURIComponent(x.example.charger)}` }, x.example.charger), ` ${since(x.example.time)}`))))));
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No frame judged yet (validation.verdicts 0, or no charger yet).")));
    list.replaceChildren(...report.latest.map((v) => el("div", { class: "divergence", "data-charger": v.charger, "data-action": v.action },
      el("strong", {}, v.action), ` · ${v.leg} · `, el("a", { href: `#/charger/${encodeURIComponent(v.charger)}?connection=${encodeURIComponent(v.recorded)}` }, v.charger),
      ` · ${v.group} · ${since(v.time)}`, el("div", { class: "small" }, v.reasons.join("; ")))));
    if (!report.latest.length) list.append(el("p", { class: "muted" }, "No invalid frame so far."));
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
  else if (page === "verdicts") stopView = verdictsView();
  else if (page === "relay") stopView = relayView();
  else stopView = chargersView();
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  api("/api/session").then((s) => { document.getElementById("user").textContent = s.user; }).catch(() => {});
  route();
});
