// Sharing the screen during a call, and going back to the camera.

import { test } from "node:test";
import assert from "node:assert/strict";
import { eventually, mediaSample, useDuetAndBrowser } from "../lib/harness.mjs";
import { assertMediaFlows, twoPeopleInACall, closeCleanly } from "../lib/assertions.mjs";

// Chromium's fake screen for getDisplayMedia is 1280x720; the fake camera is 640x480.
const env = useDuetAndBrowser([], ["--auto-select-desktop-capture-source=Entire screen"]);

test("the screen can be shared mid-call and the camera comes back, media flowing throughout", async () => {
  const [ann, bo] = await twoPeopleInACall(env, "ann", "bo");
  const localSdp = () => ann.evaluate(() => window.__pcs.at(-1).localDescription.sdp);
  const sdpBefore = await localSdp();

  await ann.click("#share-button");
  await eventually("bo to receive a screen-sized picture", async () => (await mediaSample(bo))?.videoWidth === 1280);
  assert.equal(await ann.textContent("#share-button"), "Stop sharing");
  await assertMediaFlows(bo, "bo receives ann's screen");

  await ann.click("#share-button");
  await eventually("bo to receive the camera again", async () => (await mediaSample(bo))?.videoWidth === 640);
  assert.equal(await ann.textContent("#share-button"), "Share screen");
  await assertMediaFlows(bo, "bo receives ann's camera again");
  assert.equal(await localSdp(), sdpBefore, "no renegotiation: the track was replaced in place");
  await closeCleanly(ann, bo);
});
