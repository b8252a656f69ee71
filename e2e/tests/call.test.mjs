// Two people call each other through the real UI, over plain HTTP on localhost.

import { test } from "node:test";
import assert from "node:assert/strict";
import { acceptCall, openPage, signIn, useDuetAndBrowser, userItem } from "../lib/harness.mjs";
import { assertCallEnded, assertMediaFlows, assertNoProblems, closeCleanly } from "../lib/assertions.mjs";

const env = useDuetAndBrowser();

test("a call connects both ways, and Hang Up ends it on both sides", async () => {
  const ann = await openPage(env.browser, env.duet.url);
  const bo = await openPage(env.browser, env.duet.url);
  await signIn(ann, "ann");
  await signIn(bo, "bo");

  await userItem(ann, "bo").click();
  await acceptCall(bo);
  await assertMediaFlows(bo, "bo receives ann");
  await assertMediaFlows(ann, "ann receives bo");
  assert.equal(await ann.isEnabled("#hangup-button"), true);
  assert.equal(await bo.isEnabled("#hangup-button"), true);
  assert.match(await ann.textContent("#status"), /In a call with bo/);

  await ann.click("#hangup-button");
  await assertCallEnded(ann, "ann");
  await assertCallEnded(bo, "bo");
  assert.match(await bo.textContent("#status"), /ann hung up/);

  await closeCleanly(ann, bo);
});

test("closing the page mid-call ends the call for the other person", async () => {
  const cy = await openPage(env.browser, env.duet.url);
  const di = await openPage(env.browser, env.duet.url);
  await signIn(cy, "cy");
  await signIn(di, "di");

  await userItem(di, "cy").click();
  await acceptCall(cy);
  await assertMediaFlows(cy, "cy receives di");
  await cy.context().close();

  await assertCallEnded(di, "di");
  assert.match(await di.textContent("#status"), /cy/);
  assert.equal(await userItem(di, "cy").count(), 0, "cy left the user list");
  assertNoProblems(di);
  await di.context().close();
});
