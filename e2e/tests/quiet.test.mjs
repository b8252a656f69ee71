// Do not disturb in a browser. bo turns it on for an hour on one device and the other
// shows it too; ann's call rings nowhere, ann hears that bo isn't taking calls, and both
// find it in Recent (a missed call for bo); off again, the call rings. "Until I turn it
// off" outlives a restart of the server. A Korean page says it in Korean; axe finds
// nothing serious with it on.

import { test } from "node:test";
import assert from "node:assert/strict";
import { accountPage, sleep, startDuet, userItem, useMembersAndBrowser } from "../lib/harness.mjs";
import { closeCleanly } from "../lib/assertions.mjs";
import { violations } from "../lib/axe.mjs";

const env = useMembersAndBrowser("duet-quiet-e2e-", ["ann", "bo", "cy"]);

const page = (name, locale) => accountPage(env.browser, env.duet.url, name, locale);

/** Waits until `page`'s do not disturb choice reads `text` (options are never "visible"). */
function chosen(page, text) {
  return page.locator("#quiet-select option:checked", { hasText: text }).waitFor({ state: "attached" });
}

test("an hour of quiet on one device holds on the other; the caller hears it and both find it in Recent", async () => {
  const ann = await page("ann");
  const phone = await page("bo");
  const laptop = await page("bo");
  await phone.selectOption("#quiet-select", "hour");
  await phone.locator("#quiet-status", { hasText: "Calls don't ring." }).waitFor();
  // The laptop is told: it shows the same hour, ending at the same time.
  await chosen(laptop, /^Until \d/);
  assert.equal(
    await laptop.locator("#quiet-select option:checked").textContent(),
    await phone.locator("#quiet-select option:checked").textContent(),
  );
  assert.deepEqual(await violations(laptop), [], "the home screen with do not disturb on");

  await userItem(ann, "bo").click();
  await ann.locator("#ended-text", { hasText: "bo isn't taking calls right now." }).waitFor();
  await sleep(300);
  for (const device of [phone, laptop]) {
    assert.equal(await device.locator("#accept-button:visible").count(), 0, "nothing rang");
  }
  await ann.locator("#recent-list li").filter({ hasText: /^boNot taking calls/ }).waitFor();
  await phone.locator("#recent-list li").filter({ hasText: /^annMissed call/ }).waitFor();

  await laptop.selectOption("#quiet-select", "off");
  await chosen(phone, "Off");
  await ann.click("#call-again-button");
  await phone.locator("#accept-button").waitFor();
  await laptop.locator("#accept-button").waitFor();
  await ann.click("#hangup-button");
  await closeCleanly(ann, phone, laptop);
});

test("until turned off outlives a restart, and a Korean page says so in Korean", async () => {
  const cy = await page("cy", "ko-KR");
  await cy.selectOption("#quiet-select", "on");
  await cy.locator("#quiet-status", { hasText: "전화가 울리지 않습니다." }).waitFor();
  await sleep(500); // written by the server's task
  await cy.close();
  await env.duet.stop();
  env.duet = await startDuet(["--access", "members", "--state-dir", env.state]);
  const ann = await page("ann");
  const again = await page("cy", "ko-KR");
  await chosen(again, "직접 끌 때까지");
  await userItem(ann, "cy").click();
  await ann.locator("#ended-text", { hasText: "cy isn't taking calls right now." }).waitFor();
  await again.locator("#recent-list li").filter({ hasText: /^ann부재중/ }).waitFor();
  await closeCleanly(ann, again);
});
