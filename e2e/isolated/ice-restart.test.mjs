// Surviving the network: UDP is cut mid-call (in this test's own network namespace, so
// no other test is touched), the call goes "interrupted", the caller restarts ICE, and
// when a path exists again media flows with new ICE credentials on both sides.
//
// Runs alone in a fresh namespace (see test.sh): the cut affects every UDP packet on `lo`.

import { test } from "node:test";
import assert from "node:assert/strict";
import { eventually, sleep, useDuetAndBrowser } from "../lib/harness.mjs";
import { cutUdp, restoreUdp } from "../lib/netcut.mjs";
import { assertMediaFlows, closeCleanly, twoPeopleInACall, videoMovesAgain } from "../lib/assertions.mjs";

const env = useDuetAndBrowser();

const iceUfrag = (page) =>
  page.evaluate(() => window.__pcs.at(-1).localDescription.sdp.match(/a=ice-ufrag:(\S+)/)[1]);

test("a network cut mid-call is recovered by an ICE restart", async () => {
  const [ann, bo] = await twoPeopleInACall(env, "ann", "bo");
  await assertMediaFlows(ann, "ann receives bo");
  const before = { ann: await iceUfrag(ann), bo: await iceUfrag(bo) };

  cutUdp();
  try {
    await ann.locator("#status", { hasText: "interrupted" }).waitFor({ timeout: 30_000 });
    await eventually("ann to restart ICE", async () => (await iceUfrag(ann)) !== before.ann, { timeout: 20_000 });
    await sleep(2_000);
  } finally {
    restoreUdp();
  }
  await ann.locator("#status", { hasText: "In a call with bo" }).waitFor({ timeout: 30_000 });
  // The decoder waits for a key frame after the loss: give it a moment.
  await videoMovesAgain(bo, "bo");
  await videoMovesAgain(ann, "ann");
  await assertMediaFlows(bo, "bo receives ann after the restart");
  await assertMediaFlows(ann, "ann receives bo after the restart");
  assert.notEqual(await iceUfrag(bo), before.bo, "bo answered with new ICE credentials");
  await ann.click("#hangup-button");
  await closeCleanly(ann, bo);
});
