// Firefox, the whole real path: Firefox's own PushManager.subscribe (through a local
// push server speaking Mozilla's protocol, its dom.push.serverURL) from the page's "Ring
// this device when duet is closed"; duet's pushes, VAPID-signed and encrypted, go to the
// endpoint Firefox got, Firefox decrypts them for its service worker, which shows them on
// a desktop notification service of the test's own (session D-Bus, libnotify); with duet
// closed in Firefox, ann's call rings it, and a real click on Accept connects the call.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { accountPage, launchBrowser, runDuet, startDuet, userItem } from "../lib/harness.mjs";
import { assertMediaFlows } from "../lib/assertions.mjs";
import { firefoxAccept } from "../lib/firefox.mjs";
import { launchFirefox, pushPrefs } from "../lib/firefox.mjs";
import { startMozillaPush } from "../lib/mozpush.mjs";
import { startNotifications } from "../lib/notifications.mjs";

const env = { duet: null, state: null, push: null, firefox: null, notifications: null };

before(async () => {
  env.push = await startMozillaPush();
  env.state = mkdtempSync(join(tmpdir(), "duet-push-firefox-"));
  runDuet(env.state, ["user", "add", "bo"], "bo's long password\n");
  runDuet(env.state, ["user", "add", "ann"], "ann's long password\n");
  env.duet = await startDuet(["--access", "members", "--state-dir", env.state, "--push-dangerous-allow-endpoint", env.push.origin]);
  env.notifications = await startNotifications();
  env.firefox = await launchFirefox(pushPrefs(env.push.serverURL), env.notifications.env);
});

after(async () => {
  await env.firefox?.close();
  await env.duet?.stop();
  await env.push?.stop();
  env.notifications?.stop();
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
  const shown = await env.notifications.find(/^duet$/);
  assert.equal(shown.body, "A test ring: this device rings for your calls.", "the worker showed it on the desktop");
  await page.close();
});

test("with Firefox closed on duet, ann's call rings it by push and a real click on Accept connects", async () => {
  const chromium = await launchBrowser();
  try {
    // bo answers once with Firefox open, so the call is in ann's Recent; then closes duet.
    const page = await env.firefox.newPage();
    await page.goto(env.duet.url);
    await page.waitForSelector("#recent", { visible: true }); // signed in by its cookie
    const ann = await accountPage(chromium, env.duet.url, "ann");
    await userItem(ann, "bo").click();
    await firefoxAccept(page);
    await assertMediaFlows(ann, "ann hears bo's Firefox");
    await ann.click("#hangup-button");
    await page.close();
    // duet is closed on bo's Firefox: ann calls back from Recent; Firefox is rung by push.
    await ann.getByRole("button", { name: "Call back bo" }).first().click();
    await ann.locator("#status", { hasText: "Calling bo's devices…" }).waitFor();
    const shown = await env.notifications.find(/^ann ✓ is calling$/);
    const accept = shown.actions.find(([, title]) => title === "Accept");
    assert.ok(accept, `an Accept button: ${JSON.stringify(shown.actions)}`);
    env.notifications.click(shown.id, accept[0]); // a person's click
    await assertMediaFlows(ann, "ann hears bo, who tapped Accept in Firefox's notification");
    await ann.click("#hangup-button");
  } finally {
    await chromium.close();
  }
});
