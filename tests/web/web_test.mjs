// The live view (`tally net web`, client/web) in headless Chromium, driven by playwright-core.
//
// Starts its own network with a traitor (replica 0 equivocates: the honest replicas record
// "equivocation" within a second of load, and a view change follows), `tally net web` on a
// free port, and transfers (`tally bench`) in the background; then checks that the page loads
// with no console error, shows four replica boxes, the executed number rises while transfers
// run, the traitor's detections appear on the honest replicas, a replica killed with
// `tally net kill` is shown down within a few seconds and started again from the page's button
// is shown up and catches up, the timeline shows a recent batch through pre-prepare, prepared,
// committed and executed at all four replicas with the per-phase latency, forty concurrent web clients get answers without more polls
// of the replicas, and the server refuses a POST that is not the page's own (CSRF guard) and a
// foreign Host. Takes a screenshot, and stops the server with SIGTERM (exit 0). Everything it
// starts is stopped however it ends.
//
//   node tests/web/web_test.mjs --tally build/bin/tally [--screenshot FILE]
//
// Exit 77 (ctest's SKIP_RETURN_CODE) when Chromium or tests/web/node_modules is missing:
// `apt-get install chromium` (scripts/setup) and `npm ci` in tests/web (scripts/test does both).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, openSync, closeSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const SKIP = 77;
const started = Date.now();
const args = process.argv.slice(2);
function option(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}
const tally = resolve(option("--tally", "build/bin/tally"));
const screenshot = option("--screenshot", null);

function log(...parts) {
  console.log(`[web_test ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...parts);
}
function skip(why) {
  console.log(`SKIPPED: ${why}`);
  process.exit(SKIP);
}

// --- what the test needs --------------------------------------------------------------------
const chromiumPath = [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find(
    (p) => p && existsSync(p));
if (!chromiumPath) skip("no Chromium (apt-get install chromium, or set CHROMIUM=/path)");
let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (e) {
  skip("playwright-core is not installed (run `npm ci` in tests/web): " + e.message);
}
if (!existsSync(tally)) {
  console.error(`FAIL: no tally program at ${tally} (--tally PATH)`);
  process.exit(1);
}

// --- what it starts, and stopping it however we end -------------------------------------------
const work = mkdtempSync(join(tmpdir(), "tally-web-test-"));
const netDir = join(work, "net");
const children = [];
let browser = null;
let cleanedUp = false;

function cleanupSync() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try { child.kill("SIGKILL"); } catch (e) { /* already gone */ }
    }
  }
  if (existsSync(join(netDir, "network.json"))) {
    spawnSync(tally, ["--dir", netDir, "net", "down"], { stdio: "ignore", timeout: 20_000 });
  }
  rmSync(work, { recursive: true, force: true });
}
process.on("exit", cleanupSync);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    log(`stopped by ${sig}`);
    process.exit(1);  // runs cleanupSync through "exit"
  });
}

function run(argv, name) {
  const out = openSync(join(work, `${name}.log`), "a");
  const child = spawn(tally, ["--dir", netDir, ...argv], { stdio: ["ignore", out, out] });
  closeSync(out);
  children.push(child);
  return child;
}

function runSync(argv, timeoutMs) {
  const r = spawnSync(tally, ["--dir", netDir, ...argv], { encoding: "utf8", timeout: timeoutMs });
  if (r.status !== 0) throw new Error(`tally ${argv.join(" ")} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

// Waits until `check` returns a truthy value (returned), polling every 100 ms, or fails after
// `ms` naming `what`.
async function waitFor(what, ms, check) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}` + (last ? ` (last error: ${last.message})` : ""));
}

function expect(cond, what) {
  if (!cond) throw new Error("expected " + what);
}

async function main() {
  log("starting a 4-replica network, replica 0 equivocating");
  runSync(["net", "up", "--traitor", "0:equivocate", "--wait", "30"], 60_000);

  const port = await freePort();
  const web = run(["net", "web", "--port", String(port)], "web");
  const base = `http://127.0.0.1:${port}`;
  await waitFor("the web server", 10_000, async () => {
    if (web.exitCode !== null) throw new Error(`tally net web exited (${web.exitCode}): ` +
                                              readFileSync(join(work, "web.log"), "utf8"));
    return (await fetch(base + "/api/state")).ok;
  });

  // The guard: only the page's own POSTs (JSON, same origin) and only to our own Host.
  const post = (headers) => fetch(base + "/api/replicas/1/kill", { method: "POST", headers, body: "{}" });
  expect((await post({ "Content-Type": "text/plain" })).status === 415, "a text/plain POST refused (415)");
  expect((await post({ "Content-Type": "application/x-www-form-urlencoded" })).status === 415,
         "a form POST refused (415)");
  expect((await post({ "Content-Type": "application/json", Origin: "http://evil.example" })).status === 403,
         "a POST from another origin refused (403)");
  expect((await post({ "Content-Type": "application/json", "Sec-Fetch-Site": "cross-site" })).status === 403,
         "a cross-site POST refused (403)");
  // A foreign Host (DNS rebinding) — node's fetch will not set Host, so a raw request.
  const foreign = await new Promise((res, rej) => {
    import("node:http").then(({ request }) => {
      const req = request({ host: "127.0.0.1", port, path: "/api/state", headers: { Host: "evil.example" } },
                          (r) => { r.resume(); res(r.statusCode); });
      req.on("error", rej);
      req.end();
    });
  });
  expect(foreign === 403, `a request for another Host refused (403), got ${foreign}`);
  log("the CSRF and Host guards refuse foreign requests");

  const bench = run(["bench", "--clients", "4", "--duration", "120", "--warmup", "0"], "bench");

  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(base + "/");

  const box = (id) => page.locator(`.replica[data-id="${id}"]`);
  await waitFor("four replica boxes, all up", 10_000, async () =>
      (await page.locator('.replica[data-up="true"]').count()) === 4);
  expect((await page.locator(".replica").count()) === 4, "exactly four replica boxes");
  expect((await box(0).getAttribute("data-traitor")) === "true", "replica 0 marked as a traitor");
  expect((await box(0).locator(".traitor").textContent()).includes("equivocate"),
         "replica 0's box naming its behaviour");
  log("four replicas shown, replica 0 marked traitor");

  const executed = async (id) => Number(await box(id).locator(".executed").textContent());
  const first = await executed(1);
  await waitFor("replica 1's executed number to rise while transfers run", 15_000, async () => {
    if (bench.exitCode !== null) throw new Error("tally bench exited: " + readFileSync(join(work, "bench.log"), "utf8"));
    return (await executed(1)) >= first + 20;
  });
  log(`executed rose from ${first} to ${await executed(1)}`);
  // Both read at once: the page redraws while transfers run.
  const [shown, whole] = await box(1).locator(".digest").evaluate((e) => [e.textContent, e.title]);
  expect(/^[0-9a-f]{12}$/.test(shown) && /^[0-9a-f]{64}$/.test(whole) && whole.startsWith(shown),
         "a state digest shown as its first 12 hex digits, all 64 in its title");

  const detections = await waitFor("an honest replica's detection of the traitor", 15_000, async () => {
    for (const id of [1, 2, 3]) {
      const kinds = await box(id).locator(".detected li[data-kind]").allTextContents();
      if (kinds.length > 0) return `replica ${id}: ${kinds.join(", ")}`;
    }
    return null;
  });
  log(`detections shown: ${detections}`);

  // The timeline: recent seqs with each replica's phases, and the per-phase latency. Before the
  // kill: a restarted replica is silent until the next view (PBFT's restart rule) and catches up
  // by certified blocks, so its rows show the pre-prepare and the execution only.
  const PHASES = ["pre-prepare", "prepared", "committed", "executed"];
  const fullSeq = await waitFor("a seq with pre-prepare, prepared, committed and executed at all four replicas",
                                20_000, async () => {
    for (const seq of await page.locator("#timeline .seq").all()) {
      const rows = seq.locator('.row[data-complete="true"]');
      if ((await rows.count()) < 4) continue;
      for (let i = 0; i < 4; i++) {
        const marks = await rows.nth(i).locator(".mark").evaluateAll((ms) => ms.map((m) => m.dataset.phase));
        if (!PHASES.every((p) => marks.includes(p))) throw new Error(`a complete row without ${PHASES}: ${marks}`);
      }
      return seq.getAttribute("data-seq");
    }
    return null;
  });
  log(`timeline: seq ${fullSeq} went through ${PHASES.join(", ")} at four replicas`);
  const latency = await waitFor("a per-phase latency for every phase", 10_000, async () => {
    const cells = await page.locator("#latency tbody tr").evaluateAll((rows) => rows.map((tr) => [
      tr.dataset.from + " → " + tr.dataset.to, tr.querySelector("td.all").dataset.ms]));
    return cells.length === 3 && cells.every(([, ms]) => ms !== undefined && Number(ms) >= 0) ? cells : null;
  });
  log("per-phase latency (median ms): " + latency.map(([t, ms]) => `${t} ${Number(ms).toFixed(2)}`).join("; "));
  expect(latency.map(([t]) => t).join(", ") ===
         "pre-prepare → prepared, prepared → committed, committed → executed", "the three PBFT phases");
  await waitFor("the view change away from the equivocating primary, listed", 10_000, async () =>
      (await page.locator('#view-changes li[data-phase="new-view"]').count()) >= 1);
  const state = await (await fetch(base + "/api/state")).json();
  expect(state.replicas.every((r) => !r.up || r.recent.length <= 16), "no more than the 16 seqs the server asks for");
  const asNetStatus = (r) => !r.up || (r.digest.length === 64 && typeof r.messages_sent === "number");
  expect(state.replicas.every(asNetStatus), "each replica's fields as `tally net status --json` gives them");

  const killedAt = Date.now();
  runSync(["net", "kill", "--node", "3"], 15_000);
  await waitFor("replica 3 shown down", 5_000, async () => (await box(3).getAttribute("data-up")) === "false");
  log(`replica 3 killed with \`tally net kill\`, shown down after ${Date.now() - killedAt} ms`);
  await waitFor("the page's event for it", 5_000, async () =>
      (await page.locator('#events li[data-kind="down"]').count()) > 0);

  const startedAt = Date.now();
  await waitFor("replica 3's start button enabled", 5_000, async () => box(3).locator("button.start").isEnabled());
  await box(3).locator("button.start").click();
  await waitFor("replica 3 shown up after the page's start button", 30_000, async () =>
      (await box(3).getAttribute("data-up")) === "true");
  log(`replica 3 started from the page's button, shown up after ${Date.now() - startedAt} ms`);
  await waitFor("replica 3 caught up (within 20 of replica 1)", 30_000, async () =>
      (await executed(3)) + 20 >= (await executed(1)));
  log(`replica 3 caught up: executed ${await executed(3)} (replica 1: ${await executed(1)})`);

  // Many web clients at once are answered from the cache: the replicas are still asked at the
  // poll interval (`polls` in the state counts the server's polls of the replicas).
  const before = await (await fetch(base + "/api/state")).json();
  const t0 = Date.now();
  const answers = await Promise.all(Array.from({ length: 40 }, () =>
      fetch(base + "/api/state").then((r) => r.status).catch((e) => String(e))));
  const after = await (await fetch(base + "/api/state")).json();
  const seconds = (Date.now() - t0) / 1000;
  expect(answers.every((a) => a === 200), "40 concurrent state requests all answered: " + answers.join(","));
  expect(after.polls - before.polls <= Math.ceil(seconds * 1000 / before.poll_ms) + 2,
         `no more polls of the replicas than the interval allows (${after.polls - before.polls} in ${seconds} s)`);
  log(`40 concurrent state requests answered in ${seconds.toFixed(2)} s; ` +
      `${after.polls - before.polls} polls of the replicas meanwhile`);
  // The throughput chart has drawn a line (its transfers/s from the replicas' metrics).
  expect((await page.locator("#throughput-chart path.series").count()) >= 1, "a throughput line");
  expect((await page.locator("#progress-chart path.series").count()) === 4, "a progress line per replica");

  expect(consoleErrors.length === 0, "no console error, got: " + consoleErrors.join(" | "));
  if (screenshot) {
    await page.screenshot({ path: screenshot, fullPage: true });
    log(`screenshot: ${screenshot}`);
  }

  // SIGTERM stops the server cleanly (exit 0, its threads joined: under ASan, no leak).
  web.kill("SIGTERM");
  const webExit = await waitFor("tally net web to exit on SIGTERM", 10_000, async () =>
      web.exitCode !== null || web.signalCode !== null ? { code: web.exitCode, signal: web.signalCode } : null);
  expect(webExit.code === 0, `tally net web to exit 0 on SIGTERM, got ${JSON.stringify(webExit)}: ` +
                             readFileSync(join(work, "web.log"), "utf8").slice(-1000));
  // The replicas stop on SIGTERM, the one started from the page too (it must not inherit the
  // server's blocked signals): `net down` needs no SIGKILL after its 10 s grace.
  const downAt = Date.now();
  const down = runSync(["net", "down"], 30_000);
  expect(!down.includes("killed after"), "every replica to stop on SIGTERM, got: " + down.trim());
  log(`net down in ${Date.now() - downAt} ms`);
  log("PASS");
}

let code = 0;
try {
  await main();
} catch (e) {
  console.error("FAIL:", e.message);
  for (const name of ["web", "bench"]) {
    const file = join(work, `${name}.log`);
    if (existsSync(file)) console.error(`--- ${name}.log (end)\n` + readFileSync(file, "utf8").slice(-2000));
  }
  code = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
}
log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(code);
