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
