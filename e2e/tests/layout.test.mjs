// The page works on a phone screen and from the keyboard alone.

import { test } from "node:test";
import assert from "node:assert/strict";
import { eventually, openPage, signIn, userItem, useDuetAndBrowser } from "../lib/harness.mjs";
import { assertCallEnded, assertMediaFlows, assertNoProblems } from "../lib/assertions.mjs";

const env = useDuetAndBrowser();

test("on a phone-sized screen nothing overflows and the call controls are visible", async () => {
  const page = await openPage(env.browser, env.duet.url);
  await page.setViewportSize({ width: 375, height: 740 });
  await signIn(page, "phone");
  const layout = await page.evaluate(() => {
    const inView = (id) => {
      const r = document.getElementById(id).getBoundingClientRect();
      return r.left >= 0 && r.right <= document.documentElement.clientWidth && r.width > 0;
    };
    return {
      fits: document.documentElement.scrollWidth <= document.documentElement.clientWidth,
      videoFirst: document.getElementById("camera-container").getBoundingClientRect().top <
        document.getElementById("userlistbox").getBoundingClientRect().top,
      controls: ["received_video", "local_video", "hangup-button", "userlistbox", "text", "send"].every(inView),
      playsinline: [...document.querySelectorAll("video")].every((v) => v.playsInline),
    };
  });
  assert.deepEqual(layout, { fits: true, videoFirst: true, controls: true, playsinline: true });
  assertNoProblems(page);
  await page.context().close();
});

test("a call can be made and ended with the keyboard alone", async () => {
  const ann = await openPage(env.browser, env.duet.url);
  const bo = await openPage(env.browser, env.duet.url);
  await signIn(ann, "key-ann");
  await signIn(bo, "key-bo");
  await userItem(ann, "key-bo").focus();
  await ann.keyboard.press("Enter");
  // The incoming call takes the callee's focus to Accept: Enter picks up.
  await bo.locator("#accept-button:focus").waitFor();
  await bo.keyboard.press("Enter");
  await assertMediaFlows(bo, "key-bo receives key-ann");
  await ann.focus("#hangup-button");
  await ann.keyboard.press("Enter");
  await assertCallEnded(bo, "key-bo");
  // Once the call is over, the list no longer says key-bo is in one.
  await eventually("key-bo's label to be a plain Call again", async () =>
    (await userItem(ann, "key-bo").getAttribute("aria-label")) === "Call key-bo",
  );
  assertNoProblems(ann, bo);
  await ann.context().close();
  await bo.context().close();
});
