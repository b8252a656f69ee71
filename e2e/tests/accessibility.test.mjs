// axe-core (the accessibility engine browsers' own audits use) on every screen, in light
// and dark, at phone and desktop size: no serious or critical violation.

import { test } from "node:test";
import assert from "node:assert/strict";
import { acceptCall, openPage, signIn, useDuetAndBrowser, userItem } from "../lib/harness.mjs";
import { assertMediaFlows, closeCleanly } from "../lib/assertions.mjs";
import { violations } from "../lib/axe.mjs";

const env = useDuetAndBrowser();

for (const scheme of ["light", "dark"]) {
  for (const [size, width, height] of [["phone", 390, 844], ["desktop", 1280, 800]]) {
    test(`no serious accessibility problem on any screen, ${scheme}, ${size}`, async () => {
      const ann = await openPage(env.browser, env.duet.url);
      const bo = await openPage(env.browser, env.duet.url);
      for (const page of [ann, bo]) {
        await page.setViewportSize({ width, height });
        await page.emulateMedia({ colorScheme: scheme });
      }
      await ann.locator("#login:not([disabled])").waitFor();
      assert.deepEqual(await violations(ann), [], "welcome");
      await signIn(ann, `ann-${scheme}-${size}`);
      await signIn(bo, `bo-${scheme}-${size}`);
      assert.deepEqual(await violations(ann), [], "home");
      await userItem(ann, `bo-${scheme}-${size}`).click();
      await bo.locator("#accept-button").waitFor();
      assert.deepEqual(await violations(bo), [], "an incoming call");
      assert.deepEqual(await violations(ann), [], "ringing");
      await acceptCall(bo);
      await assertMediaFlows(bo, "bo receives ann");
      assert.deepEqual(await violations(bo), [], "in a call");
      if (size === "phone") {
        await bo.click("#more-button");
        assert.deepEqual(await violations(bo), [], "in a call, More open");
        await bo.click("#more-button");
      }
      await ann.click("#hangup-button");
      await bo.locator("#ended:not([hidden])").waitFor();
      assert.deepEqual(await violations(bo), [], "the call ended");
      if (size === "phone") {
        await bo.click("#menu-button");
        await bo.click("#home-chat-button");
        assert.deepEqual(await violations(bo), [], "settings and chat open");
      }
      await closeCleanly(ann, bo);
    });
  }
}
