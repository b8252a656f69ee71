// The echo user: a person alone calls `echo` and sees and hears themselves, through a
// native WebRTC peer inside duet.

import { test } from "node:test";
import assert from "node:assert/strict";
import { openPage, signIn, useDuetAndBrowser, userItem } from "../lib/harness.mjs";
import { assertMediaFlows, closeCleanly } from "../lib/assertions.mjs";

const env = useDuetAndBrowser();

test("calling echo returns your own audio and video, for two people at once", async () => {
  const ann = await openPage(env.browser, env.duet.url);
  const bo = await openPage(env.browser, env.duet.url);
  await signIn(ann, "ann");
  await signIn(bo, "bo");
  await userItem(ann, "echo").click();
  await userItem(bo, "echo").click();
  const seen = await assertMediaFlows(ann, "ann gets her own media back");
  await assertMediaFlows(bo, "bo gets his own media back");
  assert.equal(seen.remoteType, "host", "echo answers from duet's own address");
  assert.match(await ann.textContent("#status"), /In a call with echo/);
  assert.match(await ann.textContent("#peer-label"), /echo/);

  await ann.click("#hangup-button");
  await ann.locator("#status", { hasText: "Call with echo ended" }).waitFor();
  await assertMediaFlows(bo, "bo's echo goes on");
  await bo.click("#hangup-button");
  await closeCleanly(ann, bo);
});
