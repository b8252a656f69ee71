// Who may come in, in a browser: a members-only server, an account added from the
// command line, an invite link that lands its guest signed in, verified marks that only
// accounts get, the safety code both sides see (checked against getStats()), and a
// foreign page that cannot open duet's WebSocket.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { acceptCall, eventually, launchBrowser, openPage, runDuet, startDuet, startMembers, userItem } from "../lib/harness.mjs";
import { assertMediaFlows, closeCleanly } from "../lib/assertions.mjs";

const env = { duet: null, browser: null, state: null };

/** Runs `duet <args>` against the test's state directory, as an operator would. */
function duet(args, input = "") {
  return runDuet(env.state, args, input);
}

before(async () => {
  Object.assign(env, await startMembers("duet-access-e2e-"));
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await env.duet?.stop();
  rmSync(env.state, { recursive: true, force: true });
});

/** The browser logs a refused sign-in (`status`) as a console error; the page itself
 *  said what happened in words. Anything else is still a problem. */
function onlyRefusals(page, status) {
  const refused = `status of ${status}`;
  assert.ok(page.problems.length > 0 && page.problems.every((p) => p.includes(refused)), page.problems.join("\n"));
  page.problems.length = 0;
}

/** Fills in and sends the account form of `page`. */
async function signInWithAccount(page, name, password) {
  await page.fill("#account-name", name);
  await page.fill("#account-password", password);
  await page.click("#account-form button[type=submit]");
}

/** Whether `page` can open a WebSocket to `target`: "open" or "refused". */
function openWebSocket(page, target) {
  return page.evaluate(
    (url) =>
      new Promise((resolve) => {
        const ws = new WebSocket(url, "json");
        ws.onopen = () => resolve("open");
        ws.onerror = () => resolve("refused");
      }),
    target,
  );
}

/** The code duet shows, computed here from two fingerprints as docs/protocol.md says. */
function safetyCode(a, b) {
  const [first, second] = [a, b].sort();
  const digest = createHash("sha256").update(`duet safety code v1\n${first}\n${second}`).digest();
  const digits = (digest.readBigUInt64BE(0) % 10n ** 12n).toString().padStart(12, "0");
  return digits.match(/.{4}/g).join(" ");
}

/** Both certificate fingerprints of the page's call, from getStats(). */
async function certificateFingerprints(page) {
  return page.evaluate(async () => {
    const stats = await window.__pcs.at(-1).getStats();
    const transport = [...stats.values()].find((r) => r.type === "transport" && r.localCertificateId);
    const format = (c) => `${c.fingerprintAlgorithm.toLowerCase()} ${c.fingerprint.toUpperCase()}`;
    return [format(stats.get(transport.localCertificateId)), format(stats.get(transport.remoteCertificateId))];
  });
}

test("an invited guest lands signed in, calls an account holder, and both read the same safety code", async () => {
  duet(["user", "add", "ann", "--admin"], "ann's long password\n");
  const link = duet(["invite", "--room", "clinic", "--name", "Kim", "--url", env.duet.url]);
  assert.match(link, new RegExp(`^${env.duet.url}/i/[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$`));

  // ann signs in with her account; the page says who may come in first.
  const ann = await openPage(env.browser, new URL("/r/clinic", env.duet.url).href);
  await ann.locator("#access-mode", { hasText: "Only members may come in" }).waitFor();
  assert.equal(await ann.isVisible("#new-room-button"), false, "nothing to make before coming in");
  assert.equal(await ann.isVisible("#ask-invite"), true, "a visitor is told to ask for an invite link");
  await signInWithAccount(ann, "ann", "ann's long password");
  await ann.locator("#whoami", { hasText: "Signed in as ann" }).waitFor();

  // Kim opens the link and is in the room, signed in, under the invite's name.
  const kim = await openPage(env.browser, link);
  await kim.locator("#whoami", { hasText: "Signed in as Kim" }).waitFor();
  assert.equal(new URL(kim.url()).pathname, "/r/clinic");
  assert.equal(await kim.inputValue("#name"), "Kim");
  assert.equal(await kim.isVisible("#new-room-button"), false, "an invite for one room opens no other");

  // Only the account holder is verified, and a name cannot claim it.
  await userItem(kim, "ann").waitFor();
  await userItem(ann, "Kim").waitFor();
  assert.equal(await userItem(kim, "ann").getAttribute("data-verified"), "true");
  assert.equal(await userItem(ann, "Kim").getAttribute("data-verified"), "false");
  assert.match(await userItem(kim, "ann").locator(".call-button.video").getAttribute("aria-label"), /verified account/);

  await userItem(kim, "ann").click();
  await acceptCall(ann);
  await assertMediaFlows(ann, "ann receives Kim");
  await assertMediaFlows(kim, "Kim receives ann");
  let seen = [];
  const shown = await eventually("both safety codes", async () => {
    seen = [await ann.textContent("#safety-code"), await kim.textContent("#safety-code")];
    return seen.every((c) => /^\d{4} \d{4} \d{4}$/.test(c)) ? seen : null;
  }).catch((err) => {
    throw new Error(`${err.message}; the pages show ${JSON.stringify(seen)}`);
  });
  assert.equal(shown[0], shown[1], "both sides show the same code");
  const [annLocal, annRemote] = await certificateFingerprints(ann);
  const [kimLocal, kimRemote] = await certificateFingerprints(kim);
  assert.equal(annLocal, kimRemote, "no fingerprint was replaced on the way");
  assert.equal(shown[0], safetyCode(annLocal, annRemote), "the code is the one both certificates make");
  assert.equal(shown[1], safetyCode(kimLocal, kimRemote));
  assert.equal(await ann.isVisible("#safety"), true);

  await ann.click("#hangup-button");
  await kim.locator("#safety").waitFor({ state: "hidden" });

  // ann is an admin: she makes the next link from the page, for this room.
  await ann.click("#make-invite-button");
  await ann.fill("#invite-name", "Dr Lee");
  await ann.click("#make-invite-form button[type=submit]");
  await ann.locator("#made-invite-link").waitFor();
  const made = await eventually("the link in the page", async () => ann.inputValue("#made-invite-link"));
  assert.match(made, new RegExp(`^${env.duet.url}/i/`));
  assert.equal(await kim.isVisible("#make-invite-button"), false, "only admins make links");
  const lee = await openPage(env.browser, made);
  await lee.locator("#whoami", { hasText: "Signed in as Dr Lee" }).waitFor();
  assert.equal(new URL(lee.url()).pathname, "/r/clinic", "the link is for ann's room");
  await userItem(ann, "Dr Lee").waitFor();

  // A one-time link does not work twice, and says so in words.
  const again = await openPage(env.browser, link);
  await again.locator("#access-error", { hasText: "already been used" }).waitFor();
  onlyRefusals(again, 410);
  await closeCleanly(ann, kim, lee, again);
});

test("a page of another origin cannot open duet's WebSocket with a member's cookie", async () => {
  duet(["user", "add", "bo"], "bo's long password\n");
  const bo = await openPage(env.browser, env.duet.url);
  await signInWithAccount(bo, "bo", "bo's long password");
  await bo.locator("#whoami", { hasText: "Signed in as bo" }).waitFor();
  // The same browser, on another origin (localhost instead of 127.0.0.1) served by the
  // same server: a hostile page would be the same, on a site of its own.
  const port = new URL(env.duet.url).port;
  const foreign = await bo.context().newPage();
  await foreign.goto(`http://localhost:${port}/healthz`);
  const target = `ws://127.0.0.1:${port}/ws`;
  assert.equal(await openWebSocket(foreign, target), "refused");
  const own = await openWebSocket(bo, target);
  assert.equal(own, "open", "duet's own page still can");
  await closeCleanly(bo);
});

test("signing out closes the page's connection and brings back the sign-in form", async () => {
  duet(["user", "add", "cy"], "cy's long password\n");
  const cy = await openPage(env.browser, env.duet.url);
  await signInWithAccount(cy, "cy", "cy's long password");
  await cy.locator("#whoami", { hasText: "Signed in as cy" }).waitFor();
  // Removed by the operator while online: the page is told within seconds.
  duet(["user", "remove", "cy"]);
  await cy.locator("#status", { hasText: "You were signed out" }).waitFor({ timeout: 10_000 });
  assert.equal(await cy.isVisible("#account-form"), true);
  const wrong = await openPage(env.browser, env.duet.url);
  await signInWithAccount(wrong, "cy", "cy's long password");
  await wrong.locator("#access-error", { hasText: "Wrong name or password" }).waitFor();
  onlyRefusals(wrong, 401);
  await closeCleanly(cy, wrong);
});

test("on a password server the page asks for the password, then for a name", async () => {
  const server = await startDuet(["--access", "password", "--state-dir", env.state], {
    env: { DUET_ACCESS_PASSWORD: "our family password" },
  });
  try {
    const page = await openPage(env.browser, server.url);
    await page.locator("#access-mode", { hasText: "asks for a password" }).waitFor();
    assert.equal(await page.isVisible("#login-form"), false, "no name before the password");
    assert.deepEqual(await page.locator("#userlistbox li").allTextContents(), [], "nobody is shown to a stranger");
    await page.fill("#access-password", "a wrong guess");
    await page.click("#password-form button[type=submit]");
    await page.locator("#access-error", { hasText: "Wrong name or password" }).waitFor();
    onlyRefusals(page, 401);
    await page.fill("#access-password", "our family password");
    await page.click("#password-form button[type=submit]");
    await page.locator("#session-text", { hasText: "Signed in with the server's password" }).waitFor();
    await page.locator("#login:not([disabled])").waitFor();
    await page.fill("#name", "grandma");
    await page.click("#login");
    await page.locator("#whoami", { hasText: "Signed in as grandma" }).waitFor();
    await userItem(page, "echo").waitFor();
    await closeCleanly(page);
  } finally {
    await server.stop();
  }
});
