// Firefox, the whole real path: Firefox's own PushManager.subscribe (through a local
// push server speaking Mozilla's protocol, its dom.push.serverURL) from the page's "Ring
// this device when duet is closed"; duet's test ring, VAPID-signed and encrypted, goes to
// the endpoint Firefox got, and Firefox's service worker decrypts it and shows it.

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
  await page.waitForFunction(async () => {
    const list = await (await navigator.serviceWorker.ready).getNotifications();
    return list.some((n) => n.body === "A test ring: this device rings for your calls.");
  }, { timeout: 15_000 });
  assert.ok(env.push.acks.some((a) => a.code === 100), `Firefox decrypted the push: ${JSON.stringify(env.push.acks)}`);
  await page.close();
});
