// Firefox, the whole real path: Firefox's own PushManager.subscribe (through a local
// push server speaking Mozilla's protocol, its dom.push.serverURL) from the page's "Ring
// this device when duet is closed"; duet's test ring, VAPID-signed and encrypted, goes to
// the endpoint Firefox got, and Firefox decrypts it for its service worker (showing it
// on screen needs a desktop notification service, which this test does not run).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDuet, startDuet } from "../lib/harness.mjs";
import { launchFirefox, pushPrefs } from "../lib/firefox.mjs";
import { startMozillaPush } from "../lib/mozpush.mjs";

const env = { duet: null, state: null, push: null, firefox: null };

before(async () => {
  env.push = await startMozillaPush();
  env.state = mkdtempSync(join(tmpdir(), "duet-push-firefox-"));
  runDuet(env.state, ["user", "add", "bo"], "bo's long password\n");
  env.duet = await startDuet(["--access", "members", "--state-dir", env.state, "--push-dangerous-allow-endpoint", env.push.origin]);
  env.firefox = await launchFirefox(pushPrefs(env.push.serverURL));
});

after(async () => {
  await env.firefox?.close();
  await env.duet?.stop();
  await env.push?.stop();
  rmSync(env.state, { recursive: true, force: true });
});

test("Firefox subscribes from the page and duet's encrypted test ring reaches its worker", async () => {
  const page = await env.firefox.newPage(); // not a private context: workers and push need storage
  await page.goto(env.duet.url);
  await page.waitForSelector("#account-name", { visible: true });
  await page.type("#account-name", "bo");
  await page.type("#account-password", "bo's long password");
  await page.click("#account-form button[type=submit]");
  await page.waitForSelector("#push-on", { visible: true });
  await page.click("#push-on");
  await page.waitForFunction(() => /this device rings/.test(document.getElementById("push-status").textContent));
  const listed = await page.$eval("#push-devices", (list) => list.textContent);
  assert.match(listed, /Firefox on Linux \(this device\)/);
  await page.click("#push-test");
  await page.waitForFunction(() => /1 device\(s\) reached/.test(document.getElementById("push-status").textContent));
  // Firefox acknowledges a push its worker got: 100 once decrypted (101: it could not).
  const acked = async () => env.push.acks.find((a) => a.code === 100 || a.code === 101);
  const deadline = Date.now() + 15_000;
  while (!(await acked()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(env.push.acks.map((a) => a.code), [100], "Firefox decrypted duet's push and handed it to the worker");
  await page.close();
});
