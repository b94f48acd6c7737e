// The live view's page: polls GET /api/state (the server's last poll of the replicas) and
// draws it. No library: the charts are SVG drawn here. Text from the server goes in through
// textContent only.
"use strict";

const POLL_MS = 500;
const COLORS = ["#2b6cb0", "#38a169", "#d53f8c", "#dd6b20", "#805ad5", "#319795", "#718096"];
const SVG_NS = "http://www.w3.org/2000/svg";
const boxes = new Map();  // replica id -> { el, fields }
let lastOk = 0;
let busy = false;  // a kill or start is queued or running

function color(id) { return COLORS[id % COLORS.length]; }

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function makeBox(id) {
  const box = el("article", "replica");
  box.dataset.id = id;
  const head = el("div", "head");
  const name = el("span", "rid");
  const swatch = el("span", "swatch");
  swatch.style.background = color(id);
  name.append(swatch, document.createTextNode("replica " + id));
  const state = el("span", "state", "…");
  head.append(name, state);
  const role = el("div", "role");
  const traitor = el("div", "traitor");
  const dl = el("dl");
  const field = (label, cls) => {
    const dd = el("dd", cls, "–");
    dl.append(el("dt", null, label), dd);
    return dd;
  };
  const executed = field("executed", "executed");
  const stable = field("stable", "stable");
  const transactions = field("transfers", "transactions");
  transactions.title = "transfers this replica's process executed since it started (its metrics)";
  const digest = field("digest", "digest");
  const detectedTitle = el("h4", null, "detected in peers");
  const detected = el("ul", "detected");
  const rejectedTitle = el("h4", null, "rejected input");
  const rejected = el("ul", "rejected");
  const buttons = el("div", "buttons");
  const kill = el("button", "kill", "kill");
  const start = el("button", "start", "start");
  kill.type = start.type = "button";
  kill.title = "tally net kill --node " + id;
  start.title = "tally net start --node " + id;
  kill.addEventListener("click", () => act("kill", id));
  start.addEventListener("click", () => act("start", id));
  buttons.append(kill, start);
  box.append(head, role, traitor, dl, detectedTitle, detected, rejectedTitle, rejected, buttons);
  return { el: box, state, role, traitor, executed, stable, transactions, digest, detected, rejected, kill, start,
           counts: { detected: new Map(), rejected: new Map() } };
}

// Fills a list with "kind  count", flashing the rows whose count rose since the last poll.
function fillCounts(list, seen, counts) {
  const kinds = Object.keys(counts || {}).sort();
  list.replaceChildren();
  if (kinds.length === 0) {
    list.append(el("li", "none", "none"));
    seen.clear();
    return;
  }
  for (const kind of kinds) {
    const li = el("li");
    li.dataset.kind = kind;
    li.append(el("span", null, kind), el("b", null, String(counts[kind])));
    if (seen.has(kind) && seen.get(kind) < counts[kind]) li.classList.add("changed");
    seen.set(kind, counts[kind]);
    list.append(li);
  }
}

function renderReplicas(state) {
  const container = document.getElementById("replicas");
  for (const r of state.replicas) {
    let box = boxes.get(r.id);
    if (!box) {
      box = makeBox(r.id);
      boxes.set(r.id, box);
      container.append(box.el);
    }
    box.el.dataset.up = r.up ? "true" : "false";
    box.el.dataset.traitor = r.traitor.length > 0 ? "true" : "false";
    box.state.textContent = r.up ? "up" : "down";
    box.traitor.textContent = r.traitor.length > 0 ? "traitor: " + r.traitor.join(", ") : "";
    if (r.up) {
      const term = r.protocol === "raft" ? "term" : "view";
      box.role.replaceChildren(el("b", null, r.role || "?"), document.createTextNode(
          " · " + term + " " + r.view + (r.view_changing ? " (changing view)" : "") +
          (r.leader !== undefined && r.protocol === "raft" ? " · leader " + r.leader : "")));
      box.executed.textContent = String(r.executed);
      box.stable.textContent = String(r.stable_checkpoint);
      box.transactions.textContent = r.transactions === null ? "–" : String(r.transactions);
      box.digest.textContent = r.digest;
      fillCounts(box.detected, box.counts.detected, r.detected);
      fillCounts(box.rejected, box.counts.rejected, r.rejected);
    } else {
      box.role.textContent = "not answering (" + r.address + ")";
    }
    box.kill.disabled = busy || !r.up;
    box.start.disabled = busy || r.up;
  }
}

// Lines over time on an SVG of 600×220 user units: series = [{color, points: [[t, v|null]]}].
function drawChart(svgEl, series, t0, t1, opts) {
  const W = 600, H = 220, L = 52, R = 8, T = 8, B = 20;
  let lo = Infinity, hi = -Infinity;
  for (const s of series) for (const [, v] of s.points) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (opts.zero) lo = 0;
  if (hi - lo < 1) hi = lo + 1;
  hi += (hi - lo) * 0.05;
  const x = (t) => L + (W - L - R) * (t - t0) / (t1 - t0);
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const parts = [];
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4;
    parts.push(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    const label = svg("text", { class: "axis-label", x: L - 4, y: y(v) + 4, "text-anchor": "end" });
    label.textContent = v >= 100 ? Math.round(v).toLocaleString() : v.toFixed(v >= 10 ? 0 : 1);
    parts.push(label);
  }
  for (const secondsAgo of [60, 45, 30, 15, 0]) {
    const t = t1 - secondsAgo * 1000;
    if (t < t0) continue;
    const anchor = secondsAgo === 0 ? "end" : secondsAgo === 60 ? "start" : "middle";
    const label = svg("text", { class: "axis-label", x: x(t), y: H - 4, "text-anchor": anchor });
    label.textContent = secondsAgo === 0 ? "now" : "-" + secondsAgo + " s";
    parts.push(label);
  }
  for (const s of series) {
    let d = "";
    let pen = false;
    for (const [t, v] of s.points) {
      if (v === null) { pen = false; continue; }
      d += (pen ? "L" : "M") + x(t).toFixed(1) + " " + y(v).toFixed(1) + " ";
      pen = true;
    }
    if (d) parts.push(svg("path", { class: "series", d, stroke: s.color }));
  }
  svgEl.replaceChildren(...parts);
}

// A moving average over `k` samples, to steady rates measured every 500 ms.
function smooth(points, k) {
  return points.map(([t], i) => {
    let sum = 0, n = 0;
    for (let j = Math.max(0, i - k + 1); j <= i; j++) if (points[j][1] !== null) { sum += points[j][1]; n++; }
    return [t, n ? sum / n : null];
  });
}

function renderCharts(state) {
  const h = state.history;
  const t1 = state.last_poll_ms || state.now_ms;
  const t0 = t1 - state.history_s * 1000;
  const progress = state.replicas.map((r) => ({
    color: color(r.id),
    points: h.map((s) => [s.t_ms, s.executed[r.id]]),
  }));
  drawChart(document.getElementById("progress-chart"), progress, t0, t1, { zero: false });
  const legend = document.getElementById("progress-legend");
  if (legend.childElementCount !== state.replicas.length) {
    legend.replaceChildren(...state.replicas.map((r) => el("span", "key r" + (r.id % COLORS.length), "replica " + r.id)));
  }
  const tx = smooth(h.map((s) => [s.t_ms, s.transactions_per_s]), 4);
  const batches = smooth(h.map((s) => [s.t_ms, s.batches_per_s]), 4);
  drawChart(document.getElementById("throughput-chart"),
            [{ color: "#2b6cb0", points: tx }, { color: "#b7791f", points: batches }], t0, t1, { zero: true });
  const last = (pts) => { for (let i = pts.length - 1; i >= 0; i--) if (pts[i][1] !== null) return pts[i][1]; return null; };
  const txNow = last(tx), bNow = last(batches);
  document.getElementById("throughput-now").textContent =
      (txNow === null ? "transfers/s: – (no metrics port)" : "now " + Math.round(txNow) + " transfers/s") +
      ", " + (bNow === null ? "–" : bNow.toFixed(1)) + " batches/s";
}

function renderEvents(state) {
  const list = document.getElementById("events");
  const items = state.events.slice().reverse().map((e) => {
    const li = el("li");
    li.dataset.kind = e.kind;
    const time = el("time", null, new Date(e.t_ms).toLocaleTimeString());
    li.append(time, document.createTextNode(e.text));
    return li;
  });
  if (items.length === 0) items.push(el("li", "none", "nothing yet"));
  list.replaceChildren(...items);
}

function render(state) {
  busy = state.action !== null;
  const up = state.replicas.filter((r) => r.up).length;
  let text = state.protocol.toUpperCase() + " · " + state.n + " replicas (f=" + state.f + ") · " + up + " up · " + state.dir;
  if (state.action) text += " · " + state.action.verb + " replica " + state.action.id + "…";
  document.getElementById("summary").textContent = text;
  renderReplicas(state);
  renderCharts(state);
  renderEvents(state);
}

function showFreshness() {
  const f = document.getElementById("freshness");
  const age = (Date.now() - lastOk) / 1000;
  const fresh = lastOk > 0 && age < 3;
  f.dataset.fresh = fresh ? "true" : "false";
  f.textContent = lastOk === 0 ? "waiting for the server" : fresh ? "live" : "server silent for " + Math.round(age) + " s";
}

async function poll() {
  try {
    const res = await fetch("/api/state", { cache: "no-store" });
    if (res.ok) {
      render(await res.json());
      lastOk = Date.now();
    }
  } catch (e) {
    // The server is gone or restarting: say so, keep polling.
  }
  showFreshness();
  setTimeout(poll, POLL_MS);
}

async function act(verb, id) {
  busy = true;
  for (const b of boxes.values()) b.kill.disabled = b.start.disabled = true;
  try {
    await fetch("/api/replicas/" + id + "/" + verb, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
  } catch (e) {
    // Shown by the next poll (the action's event, or a silent server).
  }
}

poll();
