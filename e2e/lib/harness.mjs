// Shared harness for duet's browser tests: start the real duet binary, launch Debian's
// Chromium with a fake camera, and read what a user would notice from a page.
//
// Tests run inside a network namespace that holds only `lo` (see ../run.sh), so every
// address here is loopback and nothing can leave the machine.

import { spawn, spawnSync } from "node:child_process";
import { after, before } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const here = new URL(".", import.meta.url).pathname;
export const DUET_BIN = process.env.DUET_BIN ?? resolve(here, "../../target/release/duet");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/**
 * Starts duet on an ephemeral port (or `listen`, to restart on the same address);
 * resolves once it printed its address. `command: "turn"` starts a TURN node instead
 * (`args` then say where it listens), whose address is what it printed.
 */
export async function startDuet(args = [], { env = {}, listen = "127.0.0.1:0", command = "serve" } = {}) {
  // Tests run side by side: every port is the system's choice unless a test says otherwise.
  const defaults = args.includes("--turn-listen") ? [] : ["--turn-listen", "127.0.0.1:0", "--turn-tls-port", "0"];
  if (!args.includes("--metrics-listen")) defaults.push("--metrics-listen", "127.0.0.1:0");
  const where = command === "serve" ? ["--listen", listen] : [];
  const proc = spawn(DUET_BIN, [command, ...where, ...defaults, ...args], {
    env: { ...process.env, DUET_LOG: process.env.DUET_LOG ?? "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (chunk) => {
    stderr += chunk;
    if (process.env.DUET_E2E_VERBOSE) process.stderr.write(chunk);
  });
  const url = await new Promise((resolveUrl, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`duet did not start within 10 s: ${stderr}`)), 10_000);
    proc.stdout.on("data", (chunk) => {
      out += chunk;
      const match = out.match(/listening on (\S+)/);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`duet exited with ${code}: ${stderr}`));
    });
    proc.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start duet (${DUET_BIN}): ${err.message}. Build it with cargo build --release, or set DUET_BIN.`));
    });
  });
  const exited = new Promise((resolveExit) => proc.on("exit", (code, signal) => resolveExit({ code, signal })));
  return {
    url,
    proc,
    get stderr() {
      return stderr;
    },
    exited,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      return exited;
    },
  };
}

/** Runs `duet <args> --state-dir <state>` as an operator would (`input` on stdin); its output. */
export function runDuet(state, args, input = "") {
  const result = spawnSync(DUET_BIN, [...args, "--state-dir", state], { input, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`duet ${args.join(" ")}: ${result.stderr}`);
  return result.stdout.trim();
}

/**
 * A members-only duet with a fresh state directory (named after `prefix`) holding these
 * accounts, each with the password "<name>'s long password". Returns {duet, state}.
 */
export async function startMembers(prefix, accounts = []) {
  const state = mkdtempSync(join(tmpdir(), prefix));
  for (const name of accounts) runDuet(state, ["user", "add", name], `${name}'s long password\n`);
  return { duet: await startDuet(["--access", "members", "--state-dir", state]), state };
}

/**
 * A members-only duet with `accounts` (each with the password `<name>'s long password`)
 * and Chromium, started before a test file's tests and stopped after them; the returned
 * object holds `duet`, `browser` and `state` (a test may restart `duet` on `state`).
 */
export function useMembersAndBrowser(prefix, accounts) {
  const env = { duet: null, browser: null, state: null };
  before(async () => {
    Object.assign(env, await startMembers(prefix, accounts));
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.duet?.stop();
    rmSync(env.state, { recursive: true, force: true });
  });
  return env;
}

/**
 * Starts duet (with `args`) and Chromium (with `browserArgs`) before a test file's
 * tests and stops both after them; the returned object holds `duet` and `browser`.
 */
export function useDuetAndBrowser(args = [], browserArgs = []) {
  const env = { duet: null, browser: null };
  before(async () => {
    env.duet = await startDuet(args);
    env.browser = await launchBrowser(browserArgs);
  });
  after(async () => {
    await env.browser?.close();
    await env.duet?.stop();
  });
  return env;
}

/** Flags from ../shared/notes/browser-e2e.md: fake media, loopback ICE, no outside traffic. */
export function chromiumArgs(userDataDir, extra = []) {
  return [
    "--headless=new",
    "--no-sandbox",
    "--remote-debugging-pipe",
    "--no-startup-window",
    `--user-data-dir=${userDataDir}`,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns,Translate,MediaRouter,OptimizationHints",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--autoplay-policy=no-user-gesture-required",
    ...extra,
  ];
}

export async function launchBrowser(extra = []) {
  const userDataDir = mkdtempSync(join(tmpdir(), "duet-chromium-"));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    ignoreDefaultArgs: true,
    args: chromiumArgs(userDataDir, extra),
    timeout: 30_000,
  });
  const close = browser.close.bind(browser);
  browser.close = async () => {
    await close();
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return browser;
}

/**
 * A Chromium profile of its own as one browser context (`locale`: its language): unlike
 * the contexts of `launchBrowser`, not off the record, so it can install an app and
 * keep a service worker (`env`: more of its environment, a D-Bus session, say). Close it
 * with `context.close()`.
 */
export async function launchProfile({ locale, env } = {}) {
  return chromium.launchPersistentContext("", {
    executablePath: CHROMIUM,
    headless: true,
    locale,
    env: env ? { ...process.env, ...env } : undefined,
    args: chromiumArgs("", []).filter((a) => !/^--(headless|remote-debugging-pipe|no-startup-window|user-data-dir)/.test(a)),
    timeout: 30_000,
  });
}

/**
 * Records every RTCPeerConnection the page makes, so tests can read getStats(). With
 * `turnTransport` ("udp", "tcp", "tls" or "tls-web": TURN over TLS on the page's own
 * port), keeps only that TURN URL of the ICE servers the page passes in (which still
 * come from duet's signaling).
 */
export const RECORD_PEER_CONNECTIONS = (turnTransport) => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  const keep = (url) =>
    turnTransport === "tls-web"
      ? url.startsWith("turns:") && url.includes(`:${location.port}?`) // the web port, nothing else
      : turnTransport === "tls"
        ? url.startsWith("turns:") && !url.includes(`:${location.port}?`)
        : url.startsWith("turn:") && url.endsWith(`transport=${turnTransport}`);
  window.RTCPeerConnection = class extends Original {
    constructor(config = {}, ...rest) {
      if (turnTransport && config.iceServers) {
        config = {
          ...config,
          iceServers: config.iceServers
            .map((s) => ({ ...s, urls: [].concat(s.urls).filter(keep) }))
            .filter((s) => s.urls.length > 0),
        };
      }
      super(config, ...rest);
      window.__pcs.push(this);
    }
  };
};

/**
 * A page in its own browser context (own storage, like another person's browser),
 * with console errors and page errors collected in page.problems. `locale` sets the
 * browser's language (e.g. "ko-KR"); `cookies` are set before the page loads (a load
 * balancer's pin, say).
 */
export async function openPage(browser, url, { ignoreHTTPSErrors = false, turnTransport = null, locale, cookies } = {}) {
  const context = await browser.newContext({ ignoreHTTPSErrors, locale });
  if (cookies) await context.addCookies(cookies);
  const page = await context.newPage();
  page.problems = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") page.problems.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => page.problems.push(`pageerror: ${err.message}`));
  // A log of the page's sockets: messages both ways (parsed) with their openings and
  // closings; `received` is what came in, in order.
  page.wire = [];
  Object.defineProperty(page, "received", {
    get: () => page.wire.filter(({ dir }) => dir === "in").map(({ msg }) => msg),
  });
  const parse = (payload) => {
    try {
      return JSON.parse(payload);
    } catch {
      return { unparsed: String(payload) };
    }
  };
  page.on("websocket", (ws) => {
    page.wire.push({ dir: "open" });
    ws.on("framereceived", ({ payload }) => page.wire.push({ dir: "in", msg: parse(payload) }));
    ws.on("framesent", ({ payload }) => page.wire.push({ dir: "out", msg: parse(payload) }));
    ws.on("close", () => page.wire.push({ dir: "close" }));
  });
  await page.addInitScript(RECORD_PEER_CONNECTIONS, turnTransport);
  await page.goto(url);
  return page;
}

/** Signs in through the UI and waits until the server confirmed it. */
export async function signIn(page, name) {
  await page.locator("#login:not([disabled])").waitFor();
  await page.fill("#name", name);
  await page.click("#login");
  await page.locator("#whoami", { hasText: "Signed in as" }).waitFor();
}

/**
 * A page signed in as account `name` (made by `startMembers`, in `locale`), on its home
 * screen.
 */
export async function accountPage(browser, url, name, locale) {
  const page = await openPage(browser, url, { locale });
  await page.fill("#account-name", name);
  await page.fill("#account-password", `${name}'s long password`);
  await page.click("#account-form button[type=submit]");
  await page.locator("#recent").waitFor();
  return page;
}

/** The callee picks up: waits for the incoming-call panel and clicks Accept. */
export async function acceptCall(page) {
  await page.locator("#accept-button").waitFor();
  await page.click("#accept-button");
}

/** The `<li>` for `name` in the user list. */
export function userItem(page, name) {
  return page.locator("#userlistbox li").filter({ hasText: new RegExp(`^${escapeRegExp(name)}$`) });
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Inbound media figures and the selected candidate pair of the page's newest call. */
export async function mediaSample(page) {
  return page.evaluate(async () => {
    const pc = window.__pcs.at(-1);
    if (!pc || pc.connectionState === "closed") return null;
    const stats = await pc.getStats();
    const sample = {
      framesDecoded: 0,
      videoBytes: 0,
      audioPackets: 0,
      audioEnergy: 0,
      localType: null,
      remoteType: null,
      relayProtocol: null,
    };
    for (const r of stats.values()) {
      if (r.type === "inbound-rtp" && r.kind === "video") {
        sample.framesDecoded = r.framesDecoded ?? 0;
        sample.videoBytes = r.bytesReceived ?? 0;
      }
      if (r.type === "inbound-rtp" && r.kind === "audio") {
        sample.audioPackets = r.packetsReceived ?? 0;
        sample.audioEnergy = r.totalAudioEnergy ?? 0;
      }
      if (r.type === "transport" && r.selectedCandidatePairId) {
        const pair = stats.get(r.selectedCandidatePairId);
        sample.localType = stats.get(pair?.localCandidateId)?.candidateType ?? null;
        sample.relayProtocol = stats.get(pair?.localCandidateId)?.relayProtocol ?? null;
        sample.remoteType = stats.get(pair?.remoteCandidateId)?.candidateType ?? null;
      }
    }
    const video = document.getElementById("received_video");
    sample.videoWidth = video.videoWidth;
    return sample;
  });
}

/** A hash of the remote video's pixels and whether the picture has any contrast. */
export async function remotePixels(page) {
  return page.evaluate(() => {
    const video = document.getElementById("received_video");
    const canvas = document.createElement("canvas");
    canvas.width = 64;
    canvas.height = 48;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let hash = 2166136261;
    let min = 255;
    let max = 0;
    for (let i = 0; i < data.length; i += 4) {
      const luma = (data[i] * 299 + data[i + 1] * 587 + data[i + 2] * 114) / 1000;
      min = Math.min(min, luma);
      max = Math.max(max, luma);
      hash = Math.imul(hash ^ data[i] ^ (data[i + 1] << 8) ^ (data[i + 2] << 16), 16777619) >>> 0;
    }
    return { hash, contrast: max - min };
  });
}

/** Polls `probe` until it returns a truthy value, or fails with `what`. */
export async function eventually(what, probe, { timeout = 15_000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
