// One account on two devices (two browser contexts signed in as bo): one person in
// ann's list; a call rings both; the first to accept takes it and the other stops
// ringing within a second, saying so; a decline on one declines the call for ann and
// stops the other; the call is in Recent on both devices.

import { test } from "node:test";
import assert from "node:assert/strict";
import { acceptCall, accountPage, userItem, useMembersAndBrowser } from "../lib/harness.mjs";
import { assertMediaFlows, closeCleanly } from "../lib/assertions.mjs";

const env = useMembersAndBrowser("duet-devices-e2e-", ["ann", "bo"]);

/** ann, and bo on a phone and a laptop (two contexts), all on the home screen. */
async function annAndBosTwoDevices() {
  const ann = await accountPage(env.browser, env.duet.url, "ann");
  const phone = await accountPage(env.browser, env.duet.url, "bo");
  const laptop = await accountPage(env.browser, env.duet.url, "bo");
  await userItem(ann, "bo").waitFor();
  assert.equal(await userItem(ann, "bo").count(), 1, "bo is one person in ann's list");
  assert.equal(await phone.locator("#status", { hasText: "signed in elsewhere" }).count(), 0);
  return { ann, phone, laptop };
}

test("both of bo's devices ring; the first to accept takes the call and the other stops within a second", async () => {
  const { ann, phone, laptop } = await annAndBosTwoDevices();
  await userItem(ann, "bo").click();
  await phone.locator("#accept-button").waitFor();
  await laptop.locator("#accept-button").waitFor();
  const accepted = Date.now();
  await acceptCall(phone);
  await laptop.locator("#accept-button").waitFor({ state: "hidden", timeout: 1_000 });
  const stopped = Date.now() - accepted;
  await laptop.locator("#status", { hasText: "You took the call from ann on another device." }).waitFor();
  assert.ok(stopped < 1_000, `the laptop stopped ringing ${stopped} ms after the phone accepted`);
  await assertMediaFlows(ann, "ann hears bo's phone");
  await assertMediaFlows(phone, "bo's phone hears ann");
  assert.notEqual(await laptop.getAttribute("body", "data-screen"), "call", "the laptop is not in the call");
  await ann.click("#hangup-button");
  // The server keeps one history for the account: both devices show the answered call.
  for (const device of [phone, laptop]) {
    await device.locator("#recent-list li").filter({ hasText: /^annIncoming call, 0:0\d/ }).waitFor();
  }
  await closeCleanly(ann, phone, laptop);
});

test("a decline on one of bo's devices declines the call for ann and stops the other", async () => {
  const { ann, phone, laptop } = await annAndBosTwoDevices();
  await userItem(ann, "bo").click();
  await phone.locator("#accept-button").waitFor();
  await laptop.locator("#decline-button").click();
  await ann.locator("#status", { hasText: "bo declined the call." }).waitFor();
  await phone.locator("#accept-button").waitFor({ state: "hidden", timeout: 1_000 });
  await closeCleanly(ann, phone, laptop);
});
