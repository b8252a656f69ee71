// During a call: a running timer and the connection's quality in plain words.

import { test } from "node:test";
import assert from "node:assert/strict";
import { eventually, useDuetAndBrowser } from "../lib/harness.mjs";
import { assertMediaFlows, twoPeopleInACall, closeCleanly } from "../lib/assertions.mjs";

const env = useDuetAndBrowser();

test("a call shows its duration and a direct, measured connection; both vanish at hang-up", async () => {
  const [ann, bo] = await twoPeopleInACall(env, "ann", "bo");
  await assertMediaFlows(ann, "ann receives bo");
  await eventually("the timer to pass two seconds", async () => {
    const text = await ann.textContent("#call-timer");
    return /^00:0[2-9]$/.test(text) ? text : null;
  });
  const words = await eventually("a quality verdict", async () => {
    const text = await ann.textContent("#call-quality");
    return /connection · direct · \d+ ms · [\d.]+ (k|M)bit\/s/.test(text) ? text : null;
  });
  assert.match(words, /^(Good|Fair) connection/, "a loopback call is not poor");
  await ann.click("#hangup-button");
  await eventually("the call info to hide", () => ann.isHidden("#call-timer"));
  assert.equal(await ann.isHidden("#call-quality"), true);
  await closeCleanly(ann, bo);
});
