// Ringing an account holder's devices, in Chromium, against a real push service (npm's
// web-push-testing, which checks VAPID and decrypts). Chromium's own push service cannot
// be pointed elsewhere, so the test takes the subscription from the emulator, registers
// it through the page's API like the page does, and delivers a push to the worker with
// CDP (ServiceWorker.deliverPushMessage). bo's page lists the device; a test ring reaches
// the push service, which decrypts what duet sent; the worker shows the notification in
// the device's language; the device can be removed; axe finds nothing serious.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { eventually, launchProfile, runDuet, startDuet } from "../lib/harness.mjs";
import { startPushService } from "../lib/push-service.mjs";
import { violations } from "../lib/axe.mjs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = { duet: null, state: null, service: null };

before(async () => {
  env.service = await startPushService();
  env.state = mkdtempSync(join(tmpdir(), "duet-push-e2e-"));
  runDuet(env.state, ["user", "add", "bo"], "bo's long password\n");
  const args = ["--access", "members", "--state-dir", env.state, "--push-dangerous-allow-endpoint", env.service.origin];
  env.duet = await startDuet(args);
});

after(async () => {
  await env.duet?.stop();
  env.service?.stop();
  rmSync(env.state, { recursive: true, force: true });
});

/** bo signed in, in a profile that may show notifications, once the worker controls the page. */
async function bosPage(profile) {
  await profile.grantPermissions(["notifications"], { origin: env.duet.url });
  const page = profile.pages()[0] ?? (await profile.newPage());
  await page.goto(env.duet.url);
  await page.fill("#account-name", "bo");
  await page.fill("#account-password", "bo's long password");
  await page.click("#account-form button[type=submit]");
  await page.locator("#push").waitFor();
  await eventually("the worker to control the page", () => page.evaluate(() => Boolean(navigator.serviceWorker.controller)));
  return page;
}

test("a registered device is listed, a test ring reaches the push service decrypted, and the worker shows it", async () => {
  const profile = await launchProfile();
  try {
    const page = await bosPage(profile);
    await page.locator("#push-on", { hasText: "Ring this device when duet is closed" }).waitFor();
    const key = await page.evaluate(async () => (await (await fetch("/api/push")).json()).publicKey);
    const phone = await env.service.subscribe(key);
    const status = await page.evaluate(async (subscription) => {
      const body = JSON.stringify({ subscription, device: "Chrome on Android" });
      const answer = await fetch("/api/push/subscriptions", { method: "POST", headers: { "Content-Type": "application/json" }, body });
      return answer.status;
    }, phone.json);
    assert.equal(status, 201);
    await page.reload();
    await page.locator("#push-devices li", { hasText: "Chrome on Android" }).waitFor();
    await page.click("#push-test");
    await page.locator("#push-status", { hasText: "Test ring: 1 device(s) reached, 0 not." }).waitFor();
    assert.deepEqual(await env.service.received(phone.clientHash), [{ type: "test", account: "bo" }]);
    assert.deepEqual(await violations(page), [], "the home screen with a device rung by push");

    // The push as the worker gets it: a notification in the device's language.
    const cdp = await profile.newCDPSession(page);
    const registrations = new Promise((resolve) => cdp.on("ServiceWorker.workerRegistrationUpdated", resolve));
    await cdp.send("ServiceWorker.enable");
    const { registrations: [registration] } = await registrations;
    await cdp.send("ServiceWorker.deliverPushMessage", {
      origin: new URL(env.duet.url).origin,
      registrationId: registration.registrationId,
      data: JSON.stringify({ type: "test", account: "bo" }),
    });
    const shown = await eventually("the worker to show the notification", () =>
      page.evaluate(async () => {
        const list = await (await navigator.serviceWorker.ready).getNotifications();
        return list.length ? list.map((n) => ({ title: n.title, body: n.body, tag: n.tag })) : null;
      }),
    );
    assert.deepEqual(shown, [{ title: "duet", body: "A test ring: this device rings for your calls.", tag: "duet-test" }]);

    await page.getByRole("button", { name: "Remove Chrome on Android" }).click();
    await page.locator("#push-devices li").waitFor({ state: "detached" });
    assert.equal(await page.locator("#push-test").isVisible(), false, "nothing left to test");
  } finally {
    await profile.close();
  }
});
