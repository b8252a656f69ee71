// In-call controls: mute and camera off, as the other person notices them.

import { test } from "node:test";
import assert from "node:assert/strict";
import { eventually, mediaSample, remotePixels, sleep, useDuetAndBrowser } from "../lib/harness.mjs";
import { assertMediaFlows, twoPeopleInACall, closeCleanly } from "../lib/assertions.mjs";

const env = useDuetAndBrowser();

/** How much audio energy `page` received during `ms`. */
async function energyOver(page, ms) {
  const before = (await mediaSample(page)).audioEnergy;
  await sleep(ms);
  return (await mediaSample(page)).audioEnergy - before;
}

test("mute silences the microphone and camera off blacks out the picture, with indicators", async () => {
  const [ann, bo] = await twoPeopleInACall(env, "ann", "bo");
  const heard = await energyOver(bo, 1000);
  assert.ok(heard > 0, "ann is heard");

  await ann.click("#mute-button");
  assert.equal(await ann.getAttribute("#mute-button", "aria-pressed"), "true");
  await bo.locator("#remote-muted").waitFor();
  // Audio already in flight (a jitter buffer on a busy machine holds more) plays out first.
  await eventually("what was in flight before the mute to play out", async () => (await energyOver(bo, 300)) < heard / 3000, {
    timeout: 5_000,
  });
  const muted = await energyOver(bo, 1000);
  assert.ok(muted < heard / 1000, `nothing is heard while ann is muted (${muted} vs ${heard})`);
  await ann.click("#mute-button");
  await bo.locator("#remote-muted").waitFor({ state: "hidden" });
  await eventually("ann to be heard again", async () => (await energyOver(bo, 300)) > 0);

  await ann.click("#camera-button");
  await bo.locator("#remote-camera-off").waitFor();
  await eventually("ann's picture to go black", async () => (await remotePixels(bo)).contrast < 10);
  await ann.click("#camera-button");
  await bo.locator("#remote-camera-off").waitFor({ state: "hidden" });
  await eventually("ann's picture to come back", async () => (await remotePixels(bo)).contrast > 20);
  await assertMediaFlows(bo, "bo receives ann again");

  await ann.click("#hangup-button");
  assert.equal(await ann.isDisabled("#mute-button"), true, "controls are off outside a call");
  await closeCleanly(ann, bo);
});
