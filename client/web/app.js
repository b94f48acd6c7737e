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
          (r.catching_up_to > 0 ? " · catching up to seq " + r.catching_up_to : "") +
          (r.leader !== undefined && r.protocol === "raft" ? " · leader " + r.leader : "")));
      box.executed.textContent = String(r.executed);
      box.stable.textContent = String(r.stable_checkpoint);
      box.transactions.textContent = r.transactions === null ? "–" : String(r.transactions);
      box.digest.textContent = r.digest.slice(0, 12);
      box.digest.title = r.digest;
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

// --- The timeline of recent batches ------------------------------------------------------------
// Each replica sends its most recent sequence numbers' steps (stamped with its own wall clock)
// and when it executed them. A row is one replica's view of one seq, drawn from its first step:
// offsets within one replica's clock are sound, comparisons of two replicas' clocks are not.

const TIMELINE_SEQS = 8;
const VIEW_CHANGE_PHASES = new Set(["view-change", "new-view", "election", "leader", "follows"]);

function formatMs(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms >= 1000) return (ms / 1000).toFixed(2) + " s";
  if (ms >= 10) return Math.round(ms) + " ms";
  return ms.toFixed(ms >= 1 ? 1 : 2) + " ms";
}

// A round scale (1, 2 or 5 × 10^k ms) at least `ms`.
function niceScale(ms) {
  let step = 1;
  while (true) {
    for (const m of [1, 2, 5]) if (m * step >= ms) return m * step;
    step *= 10;
  }
}

function renderTimelineLegend(stages, protocol) {
  const legend = document.getElementById("timeline-legend");
  if (legend.dataset.protocol === protocol) return;
  legend.dataset.protocol = protocol;
  const keys = stages.concat([protocol === "raft" ? "election" : "view-change"]).map((phase) => {
    const key = el("span", "phase-key");
    key.dataset.phase = phase;
    const mark = el("span", "mark");
    mark.dataset.phase = phase;
    key.append(mark, document.createTextNode(phase));
    return key;
  });
  legend.replaceChildren(...keys);
}

// One replica's row for one seq: its marks, in ms from its first step. On the replica's
// monotonic clock (µs) when it sent those stamps: steps within a millisecond stay apart, and a
// wall clock that steps cannot bend the row; else on its wall clock.
function timelineRow(r, s, stages) {
  const mark = (phase, atMs, monoUs, view, votes) => ({ phase, atMs, monoUs, view, votes });
  const marks = s.steps.map((step) => mark(step.phase, step.at_ms, step.mono_us, step.view, step.votes));
  if (s.executed_ms > 0) marks.push(mark("executed", s.executed_ms, s.executed_mono_us, s.view, []));
  const first = marks.length ? Math.min(...marks.map((m) => m.atMs)) : 0;
  const last = marks.length ? Math.max(...marks.map((m) => m.atMs)) : 0;
  // Its own view changes while the seq was in flight there.
  for (const vc of r.view_changes || []) {
    if (vc.at_ms >= first && vc.at_ms <= last) marks.push(mark(vc.phase, vc.at_ms, vc.mono_us, vc.view, vc.votes));
  }
  const mono = marks.length > 0 && marks.every((m) => m.monoUs > 0);
  for (const m of marks) m.at = mono ? m.monoUs / 1000 : m.atMs;
  const t0 = marks.length ? Math.min(...marks.map((m) => m.at)) : 0;
  const t1 = marks.length ? Math.max(...marks.map((m) => m.at)) : 0;
  const lastView = s.steps.length ? s.steps[s.steps.length - 1].view : s.view;
  const seen = new Set(marks.filter((m) => m.phase === "executed" || m.view === lastView).map((m) => m.phase));
  return { id: r.id, marks, t0, duration: t1 - t0, complete: stages.every((p) => seen.has(p)) };
}

function drawRow(row, scale) {
  const line = el("div", "row");
  line.dataset.replica = row.id;
  line.dataset.complete = row.complete ? "true" : "false";
  const who = el("span", "who", "r" + row.id);
  who.style.color = color(row.id);
  const track = el("div", "track");
  const pos = (ms) => Math.min(100, 100 * ms / scale);
  if (row.marks.length > 1) {
    const bar = el("span", "bar");
    bar.style.width = pos(row.duration) + "%";
    track.append(bar);
  }
  for (const m of row.marks) {
    const mark = el("span", "mark");
    mark.dataset.phase = m.phase;
    const offset = m.at - row.t0;
    if (offset > scale) mark.classList.add("beyond");
    mark.style.left = pos(offset) + "%";
    mark.title = m.phase + " +" + formatMs(offset) + " (view " + m.view + ")" +
        (m.votes.length ? " · votes " + m.votes.join(", ") : "");
    track.append(mark);
  }
  line.append(who, track, el("span", "total", row.marks.length ? formatMs(row.duration) : "–"));
  return line;
}

function renderTimeline(state) {
  const stages = state.stages || [];
  renderTimelineLegend(stages, state.protocol);
  const bySeq = new Map();  // seq -> [{replica, entry}]
  for (const r of state.replicas) {
    if (!r.up || !r.recent) continue;
    for (const s of r.recent) {
      if (!bySeq.has(s.seq)) bySeq.set(s.seq, []);
      bySeq.get(s.seq).push({ r, s });
    }
  }
  const seqs = [...bySeq.keys()].sort((a, b) => b - a).slice(0, TIMELINE_SEQS);
  const groups = seqs.map((seq) => ({
    seq,
    entries: bySeq.get(seq).sort((a, b) => a.r.id - b.r.id),
    rows: bySeq.get(seq).map(({ r, s }) => timelineRow(r, s, stages)),
  }));
  // One scale for the panel: the 90th percentile of the rows' durations, so that one slow seq
  // (re-proposed after a view change) does not flatten the others; later marks sit at the edge.
  const durations = groups.flatMap((g) => g.rows.map((row) => row.duration)).sort((a, b) => a - b);
  const scale = niceScale(Math.max(1, durations.length ? durations[Math.floor(durations.length * 0.9)] : 1));
  const container = document.getElementById("timeline");
  if (groups.length === 0) {
    container.replaceChildren(el("p", "none", "no batches yet"));
    return;
  }
  const axis = el("div", "row axis");
  const ticks = el("div", "track");
  for (const f of [0, 0.5, 1]) {
    const tick = el("span", "tick", f === 0 ? "0" : formatMs(scale * f));
    tick.style.left = 100 * f + "%";
    if (f === 1) tick.classList.add("end");
    ticks.append(tick);
  }
  axis.append(el("span", "who"), ticks, el("span", "total", "total"));
  const blocks = groups.map((g) => {
    const block = el("div", "seq");
    block.dataset.seq = g.seq;
    const executed = g.entries.find(({ s }) => s.executed_ms > 0);
    const views = [...new Set(g.entries.map(({ s }) => s.view))].join("/");
    block.append(el("div", "seq-head", "seq " + g.seq + " · " + (state.protocol === "raft" ? "term " : "view ") + views +
        (executed ? " · " + executed.s.requests + " request" + (executed.s.requests === 1 ? "" : "s") : " · in flight")));
    for (const row of g.rows) block.append(drawRow(row, scale));
    return block;
  });
  container.replaceChildren(axis, ...blocks);
}

function renderLatency(state) {
  const table = document.getElementById("latency");
  const latency = state.latency;
  if (!latency) return;
  const head = el("tr");
  head.append(el("th", null, "phase"), el("th", null, "all"));
  for (const r of state.replicas) {
    const th = el("th", null, "r" + r.id);
    th.style.color = color(r.id);
    head.append(th);
  }
  const rows = latency.rows.map((row) => {
    const tr = el("tr");
    tr.dataset.from = row.from;
    tr.dataset.to = row.to;
    tr.append(el("th", null, row.from + " → " + row.to));
    const cell = (summary, cls) => {
      const td = el("td", cls, summary ? formatMs(summary.median_ms) : "–");
      if (summary) {
        td.dataset.ms = summary.median_ms;
        td.title = "median " + formatMs(summary.median_ms) + ", 90th percentile " + formatMs(summary.p90_ms) +
            ", " + summary.n + " batches";
      }
      return td;
    };
    tr.append(cell(row.all, "all"));
    row.replicas.forEach((summary) => tr.append(cell(summary, "of-replica")));
    return tr;
  });
  const thead = el("thead");
  thead.append(head);
  const tbody = el("tbody");
  tbody.append(...rows);
  table.replaceChildren(thead, tbody);
}

function renderViewChanges(state) {
  const items = [];
  for (const r of state.replicas) {
    if (!r.up) continue;
    for (const vc of r.view_changes || []) items.push({ id: r.id, ...vc });
  }
  items.sort((a, b) => b.at_ms - a.at_ms);
  const term = state.protocol === "raft" ? "term " : "view ";
  const list = items.slice(0, 12).map((vc) => {
    const li = el("li");
    li.dataset.phase = vc.phase;
    const who = el("b", null, "r" + vc.id);
    who.style.color = color(vc.id);
    li.append(el("time", null, new Date(vc.at_ms).toLocaleTimeString()), who,
              document.createTextNode(" " + vc.phase + " · " + term + vc.view +
                  (vc.votes.length ? " (" + vc.votes.join(", ") + ")" : "")));
    return li;
  });
  if (list.length === 0) list.push(el("li", "none", "none kept"));
  document.getElementById("view-changes").replaceChildren(...list);
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
  renderTimeline(state);
  renderLatency(state);
  renderViewChanges(state);
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
