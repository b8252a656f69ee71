// Call-setup benchmark: from the click that starts the conversation to the first decoded
// remote frame on the caller's page, for duet's real UI and for a bare baseline page on a
// blind relay, alternated in one run.
//
//   node bench/call-setup.mjs [calls]      (default 12 calls each; run inside
//                                           `unshare --net` to keep it hermetic)
//
// In duet a call rings first, so its clock starts when the callee clicks Accept (the
// time before that is a person deciding); the baseline, which cannot ring, starts at the
// caller's click. Times are wall-clock (performance.timeOrigin + now) taken inside the
// pages: a capturing click listener, and the remote <video>'s first
// requestVideoFrameCallback.

import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { WebSocketServer } from "ws";
import { acceptCall, launchBrowser, openPage, signIn, startDuet, userItem, eventually, sleep } from "../lib/harness.mjs";

const CALLS = Number(process.argv[2] ?? 12);
const here = new URL(".", import.meta.url).pathname;

function startBaseline() {
  const files = {
    "/": ["baseline/index.html", "text/html"],
    "/page.js": ["baseline/page.js", "text/javascript"],
  };
  const server = createServer((req, res) => {
    const file = files[req.url];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": file[1] }).end(readFileSync(here + file[0]));
  });
  const wss = new WebSocketServer({ server, path: "/relay" });
  wss.on("connection", (ws) => {
    ws.on("message", (data) => {
      for (const other of wss.clients) if (other !== ws) other.send(data.toString());
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() }),
    ),
  );
}

/** Arms a page: its next click and its next remote frame are timed. */
async function arm(page) {
  await page.evaluate(() => {
    window.__clickAt = null;
    const wall = (t) => performance.timeOrigin + t;
    document.addEventListener("click", () => (window.__clickAt ??= wall(performance.now())), { capture: true, once: true });
    window.__firstFrame = new Promise((resolve) =>
      document.getElementById("received_video").requestVideoFrameCallback((now) => resolve(wall(now))),
    );
  });
}

/** From `clicked`'s armed click to `framed`'s first remote frame. */
async function measured(clicked, framed) {
  const clickAt = await clicked.evaluate(() => window.__clickAt);
  return (await framed.evaluate(async () => await window.__firstFrame)) - clickAt;
}

const ended = (page) =>
  eventually("the call to end", () => page.evaluate(() => document.getElementById("received_video").srcObject === null));

async function duetCall(a, b) {
  await arm(a);
  await userItem(a, "callee").click();
  await b.locator("#accept-button").waitFor();
  await arm(b);
  await acceptCall(b);
  const ms = await measured(b, a);
  await a.click("#hangup-button");
  await ended(a);
  await ended(b);
  return ms;
}

async function baselineCall(a, b) {
  await arm(a);
  await a.click("#call");
  const ms = await measured(a, a);
  await a.click("#hangup");
  await ended(a);
  await ended(b);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const duet = await startDuet();
const baseline = await startBaseline();
const browser = await launchBrowser();
try {
  const [da, db] = [await openPage(browser, duet.url), await openPage(browser, duet.url)];
  await signIn(da, "caller");
  await signIn(db, "callee");
  await userItem(da, "callee").waitFor();
  const [ba, bb] = [await openPage(browser, baseline.url), await openPage(browser, baseline.url)];
  await ba.evaluate(() => window.ready);
  await bb.evaluate(() => window.ready);

  const results = { duet: [], baseline: [] };
  // One unmeasured warm-up call each, then alternate so both see the same noise.
  await duetCall(da, db);
  await baselineCall(ba, bb);
  for (let i = 0; i < CALLS; i++) {
    results.duet.push(await duetCall(da, db));
    await sleep(200);
    results.baseline.push(await baselineCall(ba, bb));
    await sleep(200);
  }
  const fmt = (xs) => xs.map((x) => x.toFixed(0)).join(" ");
  console.log(`# call setup: answer (duet: Accept; baseline: Call) to first decoded remote frame, ${CALLS} calls each`);
  console.log(`duet     ms: ${fmt(results.duet)}`);
  console.log(`baseline ms: ${fmt(results.baseline)}`);
  const [md, mb] = [median(results.duet), median(results.baseline)];
  console.log(`median: duet ${md.toFixed(0)} ms, bare baseline ${mb.toFixed(0)} ms, ratio ${(md / mb).toFixed(2)}`);
  for (const p of [da, db]) if (p.problems.length) console.log("problems:", p.problems);
} finally {
  await browser.close();
  await duet.stop();
  baseline.close();
}
