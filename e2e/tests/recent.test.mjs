// Recent calls in a browser. An account holder's are kept by the server: a missed call
// is marked and counted (heading and title) until the page has been in view a moment; an
// answered call shows its length; Call back rings the other person; a Korean page says it
// all in Korean; axe finds nothing serious in the list. A guest's are kept in their own
// browser, and are still there after a reload.

import { test } from "node:test";
import assert from "node:assert/strict";
import { acceptCall, accountPage as signedInPage, openPage, signIn, startDuet, userItem, useMembersAndBrowser } from "../lib/harness.mjs";
import { assertMediaFlows, closeCleanly } from "../lib/assertions.mjs";
import { violations } from "../lib/axe.mjs";

const env = useMembersAndBrowser("duet-recent-e2e-", ["ann", "bo", "cy"]);

/** A page signed in as account `name` (in `locale`), on its home screen. */
function accountPage(name, locale) {
  return signedInPage(env.browser, env.duet.url, name, locale);
}

/** The rows of `page`'s Recent list, as the person reads them. */
function rows(page) {
  return page.locator("#recent-list li");
}

test("a missed call is marked and counted until seen, an answered one shows its length, and Call back rings", async () => {
  const ann = await accountPage("ann");
  const bo = await accountPage("bo");
  await bo.locator("#recent-empty", { hasText: "No calls yet." }).waitFor();
  // ann calls; bo does not answer; ann gives up.
  await userItem(ann, "bo").click();
  await bo.locator("#accept-button").waitFor();
  await ann.click("#hangup-button");
  await rows(bo).filter({ hasText: "Missed call" }).waitFor();
  assert.equal(await rows(bo).first().getAttribute("data-missed"), "true");
  assert.match(await rows(bo).first().textContent(), /^ann/);
  await bo.locator("#recent-unseen", { hasText: "1 missed" }).waitFor();
  assert.equal(await bo.title(), "(1) duet", "the count is in the title");
  // bo has the page in view: the count goes, the row stays.
  await bo.locator("#recent-unseen").waitFor({ state: "hidden" });
  assert.equal(await bo.title(), "duet");
  await rows(ann).filter({ hasText: "Cancelled" }).waitFor();
  assert.deepEqual(await violations(bo), [], "Recent, with a missed call");

  // bo calls back from the list; they talk a moment; bo hangs up.
  await bo.getByRole("button", { name: "Call back ann" }).first().click();
  await acceptCall(ann);
  await assertMediaFlows(ann, "ann hears bo, called back from Recent");
  await ann.waitForTimeout(1_200);
  await bo.click("#hangup-button");
  await rows(ann).filter({ hasText: /^boIncoming call, 0:0[1-9]/ }).waitFor();
  await rows(bo).filter({ hasText: /^annOutgoing call, 0:0[1-9]/ }).waitFor();
  assert.equal(await rows(bo).count(), 2, "the missed call and the call back");
  await closeCleanly(ann, bo);
});

test("a Korean page's Recent list is in Korean: a declined call on both sides", async () => {
  const ann = await accountPage("ann");
  const cy = await accountPage("cy", "ko-KR");
  await cy.locator("#recent-heading", { hasText: "최근 통화" }).waitFor();
  await userItem(ann, "cy").click();
  await cy.locator("#decline-button").click();
  await rows(cy).filter({ hasText: "거절함" }).waitFor();
  await rows(ann).filter({ hasText: "Declined" }).waitFor();
  assert.equal(await cy.getByRole("button", { name: "ann님에게 다시 걸기" }).count(), 1);
  await closeCleanly(ann, cy);
});

test("a guest's Recent list is kept in their browser: a declined call, an answered one with its length, after a reload too", async () => {
  const open = await startDuet([]);
  try {
    const dee = await openPage(env.browser, open.url);
    const eve = await openPage(env.browser, open.url);
    await signIn(dee, "dee");
    await signIn(eve, "eve");
    await eve.locator("#recent-local", { hasText: "Kept in this browser only." }).waitFor();
    await userItem(dee, "eve").click();
    await eve.locator("#decline-button").click();
    await rows(eve).filter({ hasText: "You declined" }).waitFor();
    await rows(dee).filter({ hasText: "Declined" }).waitFor();
    await userItem(dee, "eve").click();
    await acceptCall(eve);
    await assertMediaFlows(eve, "eve hears dee");
    await eve.waitForTimeout(1_200);
    await dee.click("#hangup-button");
    await rows(dee).filter({ hasText: /^eveOutgoing call, 0:0[1-9]/ }).waitFor();
    await rows(eve).filter({ hasText: /^deeIncoming call, 0:0[1-9]/ }).waitFor();
    await eve.reload();
    await signIn(eve, "eve");
    await rows(eve).filter({ hasText: "You declined" }).waitFor();
    assert.equal(await rows(eve).count(), 2, "both calls, kept in eve's browser");
    await closeCleanly(dee, eve);
  } finally {
    await open.stop();
  }
});
