// Ringing, as both people see it: accept (in the other tests), decline, cancel, no
// answer, busy, and two people calling each other at the same moment.

import { test } from "node:test";
import assert from "node:assert/strict";
import { eventually, openPage, signIn, startDuet, useDuetAndBrowser, userItem } from "../lib/harness.mjs";
import { assertMediaFlows, closeCleanly, twoPeopleInACall } from "../lib/assertions.mjs";

const env = useDuetAndBrowser();

async function twoSignedIn(url, a, b) {
  const pa = await openPage(env.browser, url);
  const pb = await openPage(env.browser, url);
  await signIn(pa, a);
  await signIn(pb, b);
  await userItem(pa, b).waitFor();
  return [pa, pb];
}

const status = (page) => page.textContent("#status");
const noCall = (page) =>
  page.evaluate(() => document.getElementById("hangup-button").disabled && document.getElementById("incoming").hidden);

test("the callee sees who is calling and can decline; the caller is told", async () => {
  const [ann, bo] = await twoSignedIn(env.duet.url, "dec-ann", "dec-bo");
  await userItem(ann, "dec-bo").click();
  await bo.locator("#incoming", { hasText: "dec-ann is calling you" }).waitFor();
  await ann.locator("#status", { hasText: "Ringing dec-bo" }).waitFor();
  assert.equal(await ann.textContent("#hangup-button"), "Cancel");
  assert.equal(await bo.evaluate(() => window.__pcs.length), 0, "nothing is negotiated before an answer");

  await bo.click("#decline-button");
  await ann.locator("#status", { hasText: "dec-bo declined the call" }).waitFor();
  assert.ok(await noCall(ann) && await noCall(bo));
  assert.equal(await ann.evaluate(() => document.getElementById("local_video").srcObject), null, "the caller's camera is off again");
  assert.equal(await bo.evaluate(() => window.__pcs.length), 0);
  await closeCleanly(ann, bo);
});

test("the caller can cancel while it rings", async () => {
  const [ann, bo] = await twoSignedIn(env.duet.url, "can-ann", "can-bo");
  await userItem(ann, "can-bo").click();
  await bo.locator("#accept-button").waitFor();
  await ann.click("#hangup-button");
  await bo.locator("#incoming").waitFor({ state: "hidden" });
  assert.match(await status(bo), /can-ann cancelled the call/);
  assert.match(await status(ann), /You cancelled the call/);
  assert.ok(await noCall(ann) && await noCall(bo));
  await closeCleanly(ann, bo);
});

test("a call nobody answers ends as missed on both sides", async () => {
  const duet = await startDuet(["--ring-timeout", "2s"]);
  try {
    const [ann, bo] = await twoSignedIn(duet.url, "miss-ann", "miss-bo");
    await userItem(ann, "miss-bo").click();
    await bo.locator("#accept-button").waitFor();
    await ann.locator("#status", { hasText: "miss-bo did not answer" }).waitFor({ timeout: 6_000 });
    await bo.locator("#status", { hasText: "You missed a call from miss-ann" }).waitFor();
    assert.ok(await noCall(ann) && await noCall(bo));
    await closeCleanly(ann, bo);
  } finally {
    await duet.stop();
  }
});

test("calling someone in a call answers busy at once and leaves their call alone", async () => {
  const [ann, bo] = await twoPeopleInACall(env, "busy-ann", "busy-bo");
  const cy = await openPage(env.browser, env.duet.url);
  await signIn(cy, "busy-cy");
  await eventually("the list to show both as in a call", async () =>
    (await userItem(cy, "busy-bo").getAttribute("data-busy")) === "true" &&
    (await userItem(cy, "busy-ann").getAttribute("data-busy")) === "true",
  );
  await userItem(cy, "busy-bo").click();
  await cy.locator("#status", { hasText: "busy-bo is in another call" }).waitFor();
  assert.ok(await noCall(cy));
  assert.equal(await bo.isHidden("#incoming"), true, "busy-bo was not disturbed");
  await assertMediaFlows(bo, "busy-bo still receives busy-ann");
  await assertMediaFlows(ann, "busy-ann still receives busy-bo");
  await ann.click("#hangup-button");
  await eventually("the list to show nobody in a call", async () =>
    (await userItem(cy, "busy-bo").getAttribute("data-busy")) === "false",
  );
  await closeCleanly(ann, bo, cy);
});

test("two people calling each other at the same moment end up in exactly one call", async () => {
  const [ann, bo] = await twoSignedIn(env.duet.url, "glare-ann", "glare-bo");
  await userItem(bo, "glare-ann").waitFor();
  // At the same moment: dispatched, since a real click a moment later would land on the
  // incoming call that now covers the page (and be an Accept).
  await Promise.all([userItem(ann, "glare-bo").dispatchEvent("click"), userItem(bo, "glare-ann").dispatchEvent("click")]);
  await assertMediaFlows(ann, "glare-ann receives glare-bo");
  await assertMediaFlows(bo, "glare-bo receives glare-ann");
  for (const page of [ann, bo]) {
    const open = await page.evaluate(() => window.__pcs.filter((pc) => pc.connectionState !== "closed").length);
    assert.equal(open, 1, "one peer connection on each side");
    assert.equal(await page.isHidden("#incoming"), true, "nobody is left ringing");
  }
  await ann.click("#hangup-button");
  await bo.locator("#status", { hasText: "glare-ann hung up" }).waitFor();
  await closeCleanly(ann, bo);
});

/** Records the page's AudioContexts and notifications (window.__audio, window.__notes). */
const RECORD_RING = () => {
  window.__audio = [];
  window.__notes = [];
  const Audio = window.AudioContext;
  window.AudioContext = class extends Audio {
    constructor(...args) {
      super(...args);
      window.__audio.push(this);
    }
  };
  const Note = window.Notification;
  window.Notification = class extends Note {
    constructor(title, options) {
      super(title, options);
      window.__notes.push({ title, body: options?.body });
    }
  };
};

const sounding = (page) => page.evaluate(() => window.__audio.some((c) => c.state === "running"));

test("an incoming call rings: a tone, the tab's title, a notification while the tab is hidden; accepting silences it", async () => {
  const ann = await openPage(env.browser, env.duet.url);
  const bo = await openPage(env.browser, env.duet.url);
  await bo.context().grantPermissions(["notifications"]);
  await bo.context().addInitScript(RECORD_RING);
  await bo.reload();
  await signIn(ann, "ring-ann");
  await signIn(bo, "ring-bo");
  await bo.evaluate(() => Object.defineProperty(document, "hidden", { configurable: true, get: () => true }));
  await userItem(ann, "ring-bo").click();
  await bo.locator("#accept-button:focus").waitFor();
  assert.equal(await bo.title(), "Call from ring-ann · duet");
  await eventually("the ring tone to play", () => sounding(bo));
  const notes = await bo.evaluate(() => window.__notes);
  assert.deepEqual(notes, [{ title: "Call from ring-ann · duet", body: "ring-ann is calling you" }]);
  await bo.click("#accept-button");
  await eventually("the ring tone to stop", async () => !(await sounding(bo)));
  assert.equal(await bo.title(), "duet");
  await assertMediaFlows(bo, "ring-bo receives ring-ann");
  await ann.click("#hangup-button");
  await closeCleanly(ann, bo);
});

test("a declined call says so and offers to call again, which rings again", async () => {
  const [ann, bo] = await twoSignedIn(env.duet.url, "again-ann", "again-bo");
  await userItem(ann, "again-bo").click();
  await bo.click("#decline-button");
  await ann.locator("#ended-text", { hasText: "again-bo declined the call." }).waitFor();
  assert.equal(await ann.isVisible("#ended-advice"), false, "a refusal is no network problem");
  await ann.click("#call-again-button");
  await bo.locator("#incoming-text", { hasText: "again-ann is calling you" }).waitFor();
  assert.equal(await ann.isVisible("#ended"), false);
  await bo.click("#accept-button");
  await assertMediaFlows(bo, "again-bo receives again-ann");
  // The picture can fill the window or show all of it.
  const fit = () => ann.evaluate(() => getComputedStyle(document.getElementById("received_video")).objectFit);
  assert.equal(await fit(), "contain", "a desktop window shows all of the picture");
  await ann.click("#fit-button");
  assert.equal(await fit(), "cover");
  assert.equal(await ann.textContent("#fit-button"), "Fit");
  await ann.click("#hangup-button");
  await closeCleanly(ann, bo);
});
