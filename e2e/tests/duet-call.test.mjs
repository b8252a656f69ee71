// `duet call` from a terminal into a browser: the binary plays a VP8 test pattern and an
// Opus tone (committed fixtures made with Debian's ffmpeg) to a Chromium page, which
// decodes them, and records what the page's fake camera and microphone send back.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DUET_BIN, acceptCall, eventually, mediaSample, openPage, signIn, useDuetAndBrowser } from "../lib/harness.mjs";
import { assertMediaFlows, closeCleanly } from "../lib/assertions.mjs";

const env = useDuetAndBrowser();
const fixtures = resolve(new URL(".", import.meta.url).pathname, "../../fixtures");

/** Runs `duet call` with `args`; resolves to {code, stdout, stderr} when it exits. */
function duetCall(args) {
  const proc = spawn(DUET_BIN, ["call", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (c) => (stdout += c));
  proc.stderr.on("data", (c) => (stderr += c));
  const exited = new Promise((done) => proc.on("exit", (code) => done({ code, stdout, stderr })));
  return { proc, exited, get stdout() { return stdout; } };
}

/** Frames of an IVF file: [{size, key}], read here independently of duet's reader. */
function ivfFrames(path) {
  const bytes = readFileSync(path);
  assert.equal(bytes.subarray(0, 4).toString(), "DKIF");
  const frames = [];
  for (let at = 32; at + 12 <= bytes.length; ) {
    const size = bytes.readUInt32LE(at);
    frames.push({ size, key: (bytes[at + 12] & 1) === 0 });
    at += 12 + size;
  }
  return frames;
}

test("duet call plays a test pattern into a browser call and records the browser's camera", async () => {
  const dir = mkdtempSync(join(tmpdir(), "duet-call-"));
  try {
    const ann = await openPage(env.browser, env.duet.url);
    await signIn(ann, "ann");
    const call = duetCall([
      "--server", env.duet.url, "--name", "robot", "--to", "ann",
      "--play", join(fixtures, "pattern.ivf"), "--play", join(fixtures, "tone.ogg"), "--loop",
      "--record", join(dir, "ann.ivf"), "--record", join(dir, "ann.ogg"),
    ]);
    await ann.locator("#incoming", { hasText: "robot is calling you" }).waitFor();
    await acceptCall(ann);
    const sample = await assertMediaFlows(ann, "ann receives the test pattern and the tone");
    assert.equal(sample.videoWidth, 320, "the pattern's own size arrives");
    await eventually("duet call to report figures", () => /received \d+ kbit\/s/.test(call.stdout));

    await ann.click("#hangup-button");
    const { code, stdout, stderr } = await call.exited;
    assert.equal(code, 0, `duet call exits cleanly when ann hangs up (${stderr})`);
    assert.match(stdout, /connected to ann/);
    assert.match(stdout, /ann hung up/);
    const frames = ivfFrames(join(dir, "ann.ivf"));
    assert.ok(frames.length >= 20, `ann's camera was recorded (${frames.length} frames)`);
    assert.ok(frames[0].key, "the recording starts with a key frame");
    const ogg = readFileSync(join(dir, "ann.ogg"));
    assert.equal(ogg.subarray(0, 4).toString(), "OggS");
    assert.ok(ogg.length > 2000, `ann's microphone was recorded (${ogg.length} bytes)`);
    await closeCleanly(ann);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("duet call waits for a browser to call it, and says why when the browser declines", async () => {
  const waiting = duetCall(["--server", env.duet.url, "--name", "desk", "--play", join(fixtures, "pattern.ivf")]);
  const bo = await openPage(env.browser, env.duet.url);
  await signIn(bo, "bo");
  await eventually("duet call to be waiting", () => /waiting for a call/.test(waiting.stdout));
  await bo.locator("#userlistbox li", { hasText: /^desk$/ }).click();
  const sample = await assertMediaFlows(bo, "bo receives the pattern from the waiting duet call", { audio: false });
  assert.equal(sample.videoWidth, 320);
  const { code } = await waiting.exited; // plays once, then hangs up
  assert.equal(code, 0);
  await bo.locator("#status", { hasText: "desk hung up" }).waitFor();

  const refused = duetCall(["--server", env.duet.url, "--name", "caller2", "--to", "bo"]);
  await bo.locator("#decline-button").waitFor();
  await bo.click("#decline-button");
  const result = await refused.exited;
  assert.equal(result.code, 3);
  assert.match(result.stderr, /bo declined the call/);
  await closeCleanly(bo);
});

/** The safety code `duet call` printed, once it did. */
async function printedCode(call) {
  let code = null;
  await eventually("duet call to print its safety code", () => {
    code = call.stdout.match(/safety code (\d{4} \d{4} \d{4})/)?.[1] ?? null;
    return code;
  });
  return code;
}

test("a peer listing sha-256, sha-384 and sha-512 fingerprints and the page read the same safety code, both ways", async () => {
  const ann = await openPage(env.browser, env.duet.url);
  await signIn(ann, "ann");
  const listing = ["--fingerprints", "sha-384,sha-512", "--play", join(fixtures, "pattern.ivf"), "--loop"];
  // It calls the page.
  const caller = duetCall(["--server", env.duet.url, "--name", "stack", "--to", "ann", ...listing]);
  await ann.locator("#incoming", { hasText: "stack is calling you" }).waitFor();
  await acceptCall(ann);
  await assertMediaFlows(ann, "ann receives the peer that lists three fingerprints", { audio: false });
  const theirs = await printedCode(caller);
  await ann.locator("#safety-code", { hasText: theirs }).waitFor({ timeout: 5_000 }).catch(async () => {
    assert.fail(`the page shows ${JSON.stringify(await ann.textContent("#safety-code"))}, the peer ${theirs}`);
  });
  await ann.click("#hangup-button");
  assert.equal((await caller.exited).code, 0);

  // The page calls it.
  const callee = duetCall(["--server", env.duet.url, "--name", "stack2", ...listing]);
  await eventually("duet call to be waiting", () => /waiting for a call/.test(callee.stdout));
  await ann.locator("#userlistbox li", { hasText: /^stack2$/ }).click();
  await assertMediaFlows(ann, "ann receives the called peer", { audio: false });
  const code = await printedCode(callee);
  await ann.locator("#safety-code", { hasText: code }).waitFor({ timeout: 5_000 }).catch(async () => {
    assert.fail(`the page shows ${JSON.stringify(await ann.textContent("#safety-code"))}, the peer ${code}`);
  });
  await ann.click("#hangup-button");
  callee.proc.kill();
  await closeCleanly(ann);
});
