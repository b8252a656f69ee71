// Two-device ringing across engines: bo signed in on Firefox and on Chromium at once;
// ann's call rings both; Firefox takes it, Chromium stops ringing within a second and
// says so, and media flows between ann and bo's Firefox.

import { test } from "node:test";
import assert from "node:assert/strict";
import { accountPage, userItem, useMembersAndBrowser } from "../lib/harness.mjs";
import { assertMediaFlows, closeCleanly } from "../lib/assertions.mjs";
import { firefoxAccept, launchFirefox, openFirefoxPage } from "../lib/firefox.mjs";

const env = useMembersAndBrowser("duet-devices-firefox-e2e-", ["ann", "bo"]);

test("bo on Firefox and Chromium: both ring, Firefox takes the call and Chromium stops", async () => {
  const firefox = await launchFirefox();
  try {
    const fox = await openFirefoxPage(firefox, env.duet.url);
    await fox.waitForSelector("#account-name", { visible: true });
    await fox.type("#account-name", "bo");
    await fox.type("#account-password", "bo's long password");
    await fox.click("#account-form button[type=submit]");
    await fox.waitForSelector("#recent", { visible: true });
    const laptop = await accountPage(env.browser, env.duet.url, "bo");
    const ann = await accountPage(env.browser, env.duet.url, "ann");
    await userItem(ann, "bo").click();
    await laptop.locator("#accept-button").waitFor();
    await firefoxAccept(fox);
    const accepted = Date.now();
    await laptop.locator("#accept-button").waitFor({ state: "hidden", timeout: 1_000 });
    assert.ok(Date.now() - accepted < 1_000, "Chromium stopped ringing within a second");
    await laptop.locator("#status", { hasText: "You took the call from ann on another device." }).waitFor();
    await assertMediaFlows(ann, "ann sees and hears bo's Firefox");
    await assertMediaFlows(fox, "bo's Firefox sees and hears ann");
    await ann.click("#hangup-button");
    await closeCleanly(ann, laptop);
  } finally {
    await firefox.close();
  }
});
