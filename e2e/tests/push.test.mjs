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
import {
  RECORD_PEER_CONNECTIONS,
  accountPage,
  eventually,
  launchBrowser,
  launchProfile,
  runDuet,
  startDuet,
  userItem,
} from "../lib/harness.mjs";
import { assertMediaFlows } from "../lib/assertions.mjs";
import { startPushService } from "../lib/push-service.mjs";
import { startNotifications } from "../lib/notifications.mjs";
import { violations } from "../lib/axe.mjs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = { duet: null, state: null, service: null };

before(async () => {
  env.service = await startPushService();
  env.state = mkdtempSync(join(tmpdir(), "duet-push-e2e-"));
  runDuet(env.state, ["user", "add", "bo"], "bo's long password\n");
  runDuet(env.state, ["user", "add", "ann"], "ann's long password\n");
  const args = ["--access", "members", "--state-dir", env.state, "--push-dangerous-allow-endpoint", env.service.origin];
  env.duet = await startDuet(args);
});

after(async () => {
  await env.duet?.stop();
  env.service?.stop();
  rmSync(env.state, { recursive: true, force: true });
});

/** Delivers pushes to `page`'s worker through CDP. */
async function workerRegistration(profile, page) {
  const cdp = await profile.newCDPSession(page);
  const registrations = new Promise((resolve) => cdp.on("ServiceWorker.workerRegistrationUpdated", resolve));
  await cdp.send("ServiceWorker.enable");
  const { registrations: [registration] } = await registrations;
  return (data) =>
    cdp.send("ServiceWorker.deliverPushMessage", {
      origin: new URL(env.duet.url).origin,
      registrationId: registration.registrationId,
      data: JSON.stringify(data),
    });
}

/** bo's phone (`page`) rung by push through the emulator: its subscription registered. */
async function registerPhone(page) {
  const key = await page.evaluate(async () => (await (await fetch("/api/push")).json()).publicKey);
  const phone = await env.service.subscribe(key);
  const status = await page.evaluate(async (subscription) => {
    const body = JSON.stringify({ subscription, device: "Chrome on Android" });
    const answer = await fetch("/api/push/subscriptions", { method: "POST", headers: { "Content-Type": "application/json" }, body });
    return answer.status;
  }, phone.json);
  assert.equal(status, 201);
  return phone;
}

/** The pushes the emulator decrypted for `phone` once there are `count`. */
function pushes(phone, count) {
  return eventually(`${count} push(es) at the push service`, async () => {
    const got = await env.service.received(phone.clientHash);
    return got.length >= count ? got : null;
  });
}

/**
 * bo's phone (`profile`) registered to ring by push, then duet closed on it: its page
 * (on about:blank), its subscription at the emulator, `deliver` (to its worker) and how
 * many pushes the emulator had for it before.
 */
async function closedPhone(profile) {
  const page = await bosPage(profile);
  const phone = await registerPhone(page);
  const deliver = await workerRegistration(profile, page);
  const before = (await env.service.received(phone.clientHash)).length;
  await page.goto("about:blank");
  return { page, phone, deliver, before };
}

/** ann, calling bo back from her Recent list. */
async function annCallsBack(browser) {
  const ann = await accountPage(browser, env.duet.url, "ann");
  await ann.getByRole("button", { name: "Call back bo" }).first().click();
  return ann;
}

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
    const phone = await registerPhone(page);
    await page.reload();
    await page.locator("#push-devices li", { hasText: "Chrome on Android" }).waitFor();
    await page.click("#push-test");
    await page.locator("#push-status", { hasText: "Test ring: 1 device(s) reached, 0 not." }).waitFor();
    assert.deepEqual(await env.service.received(phone.clientHash), [{ type: "test", account: "bo" }]);
    assert.deepEqual(await violations(page), [], "the home screen with a device rung by push");

    // The push as the worker gets it: a notification in the device's language.
    const deliver = await workerRegistration(profile, page);
    // The worker tells its pages once it showed one (reading them while it is being shown
    // can lose it: ../shared/notes/reach.md).
    const told = page.evaluate(
      () => new Promise((resolve) => navigator.serviceWorker.addEventListener("message", (e) => resolve(e.data))),
    );
    await deliver({ type: "test", account: "bo" });
    assert.deepEqual(await told, { type: "notification-shown", kind: "test" });
    const shown = await eventually("the notification, read", () =>
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

test("a call rings bo's closed phone by push; Accept there picks it up and the laptop stops; Decline declines", async () => {
  const profile = await launchProfile();
  const browser = await launchBrowser();
  try {
    const { page: phonePage, phone, deliver } = await closedPhone(profile);
    const laptop = await accountPage(browser, env.duet.url, "bo");
    const ann = await accountPage(browser, env.duet.url, "ann");

    await userItem(ann, "bo").click();
    await laptop.locator("#accept-button").waitFor();
    const [ring] = await pushes(phone, 1);
    assert.deepEqual({ ...ring, call: 0 }, { type: "call", call: 0, from: "ann", verified: true, voice: false, room: "" });
    await deliver(ring);
    // Tapping Accept opens duet at ?accept=<call> (what the worker's openWindow does).
    await phonePage.goto(new URL(`/?accept=${ring.call}`, env.duet.url).href);
    const shown = await eventually("the ringing notification", () =>
      phonePage.evaluate(async () => {
        const list = await (await navigator.serviceWorker.ready).getNotifications();
        return list.length ? list.map((n) => ({ title: n.title, tag: n.tag, actions: n.actions.map((a) => a.action) })) : null;
      }),
    );
    assert.deepEqual(shown, [{ title: "ann ✓ is calling", tag: `call-${ring.call}`, actions: ["accept", "decline"] }]);
    await laptop.locator("#status", { hasText: "You took the call from ann on another device." }).waitFor();
    await assertMediaFlows(ann, "ann hears bo's phone, which picked up from the notification");
    assert.equal(new URL(phonePage.url()).search, "", "the accept is not left in the address");
    const [, answered] = await pushes(phone, 2);
    assert.deepEqual(answered, { type: "call-ended", call: ring.call, from: "ann", reason: "answered" });
    await ann.click("#hangup-button");

    // Decline on the notification declines without opening anything.
    await phonePage.goto("about:blank");
    await eventually("ann's call to end", () => ann.evaluate(() => document.body.dataset.screen !== "call"));
    await eventually("bo to be free again", async () => (await userItem(ann, "bo").getAttribute("data-busy")) === "false");
    await userItem(ann, "bo").click();
    const [, , again] = await pushes(phone, 3);
    const declined = await laptop.evaluate(async (call) => {
      const answer = await fetch("/api/calls/decline", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ call }) });
      return answer.status;
    }, again.call);
    assert.equal(declined, 204);
    await ann.locator("#ended-text", { hasText: "bo declined the call." }).waitFor();
    const [, , , ended] = await pushes(phone, 4);
    assert.deepEqual(ended, { type: "call-ended", call: again.call, from: "ann", reason: "declined" });
  } finally {
    await browser.close();
    await profile.close();
  }
});

test("with no duet open anywhere, Call back from Recent rings bo's phone by push and Accept there connects", async () => {
  const profile = await launchProfile();
  const browser = await launchBrowser();
  try {
    const { page: phonePage, phone, before } = await closedPhone(profile); // no duet page of bo's open anywhere
    const ann = await annCallsBack(browser);
    await ann.locator("#status", { hasText: "Calling bo's devices…" }).waitFor();
    const ring = (await pushes(phone, before + 1)).at(-1);
    assert.equal(ring.type, "call");
    await phonePage.goto(new URL(`/?accept=${ring.call}`, env.duet.url).href);
    await assertMediaFlows(ann, "ann hears bo's phone, rung while duet was closed everywhere");
    await ann.click("#hangup-button");
  } finally {
    await browser.close();
    await profile.close();
  }
});

test("a real click on Accept of the notification on bo's phone opens duet and connects; one on Decline declines and opens nothing", async () => {
  const notifications = await startNotifications();
  const profile = await launchProfile({ env: notifications.env });
  await profile.addInitScript(RECORD_PEER_CONNECTIONS, null); // in the window the click opens too
  const browser = await launchBrowser();
  try {
    const { phone, deliver, before } = await closedPhone(profile);
    const ann = await annCallsBack(browser);
    const ring = (await pushes(phone, before + 1)).at(-1);
    await deliver(ring);
    const shown = await notifications.find(/^ann ✓ is calling$/);
    const buttons = Object.fromEntries(shown.actions.map(([id, title]) => [title, id]));
    assert.ok(buttons.Accept && buttons.Decline, `Accept and Decline: ${JSON.stringify(shown.actions)}`);
    const opened = profile.waitForEvent("page");
    notifications.click(shown.id, buttons.Accept); // a person's click, through the desktop's service
    const duet = await opened;
    await assertMediaFlows(ann, "ann hears bo, who tapped Accept");
    await assertMediaFlows(duet, "bo's phone hears ann");
    await ann.click("#hangup-button");

    // And a real click on Decline: the call is declined, and nothing opens.
    await duet.close();
    await eventually("ann's call to end", () => ann.evaluate(() => document.body.dataset.screen !== "call"));
    const pagesBefore = profile.pages().length;
    await ann.getByRole("button", { name: "Call back bo" }).first().click();
    const next = (await pushes(phone, before + 3)).at(-1); // the ring, its answer, this ring
    await deliver(next);
    const again = await notifications.find(new RegExp(`^ann ✓ is calling$`), 15_000, (n) => n.id !== shown.id);
    notifications.click(again.id, buttons.Decline);
    await ann.locator("#ended-text", { hasText: "bo declined the call." }).waitFor();
    assert.equal(profile.pages().length, pagesBefore, "Decline opened nothing");
  } finally {
    await browser.close();
    await profile.close();
    notifications.stop();
  }
});
