// The page works on a phone screen and from the keyboard alone.

import { test } from "node:test";
import assert from "node:assert/strict";
import { acceptCall, eventually, openPage, signIn, userItem, useDuetAndBrowser } from "../lib/harness.mjs";
import { assertCallEnded, assertMediaFlows, assertNoProblems } from "../lib/assertions.mjs";

const env = useDuetAndBrowser();

/** What a person sees of `page`: which parts show, and how much of the window the other person's video takes. */
function looks(page) {
  return page.evaluate(() => {
    const box = (id) => document.getElementById(id).getBoundingClientRect();
    const shown = (id) => {
      const r = box(id);
      return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight && r.left >= 0 && r.right <= innerWidth + 0.5;
    };
    const video = box("received_video");
    const visible = Math.max(0, Math.min(video.bottom, innerHeight) - Math.max(video.top, 0)) * Math.max(0, Math.min(video.right, innerWidth) - Math.max(video.left, 0));
    const controls = [...document.querySelectorAll(".call-controls button")].filter((b) => b.getBoundingClientRect().width > 0);
    return {
      screen: document.body.dataset.screen,
      fits: document.documentElement.scrollWidth <= document.documentElement.clientWidth,
      videoShare: visible / (innerWidth * innerHeight),
      shown: Object.fromEntries(["welcome", "userlistbox", "received_video", "hangup-button", "accept-button", "text"].map((id) => [id, shown(id)])),
      namedControls: controls.map((b) => b.textContent.trim()).filter(Boolean).length === controls.length && controls.length >= 4,
      playsinline: [...document.querySelectorAll("video")].every((v) => v.playsInline),
    };
  });
}

for (const [size, width, height] of [["phone", 390, 844], ["desktop", 1280, 800]]) {
  test(`each moment has its screen at ${size} size: welcome, people, ringing, the call filling the window`, async () => {
    const ann = await openPage(env.browser, env.duet.url);
    const bo = await openPage(env.browser, env.duet.url);
    for (const page of [ann, bo]) await page.setViewportSize({ width, height });
    await ann.locator("#login:not([disabled])").waitFor();
    let seen = await looks(ann);
    assert.equal(seen.screen, "welcome");
    assert.deepEqual([seen.fits, seen.shown.welcome, seen.shown.received_video], [true, true, false], "no empty video box before signing in");
    await signIn(ann, `ann-${size}`);
    await signIn(bo, `bo-${size}`);
    seen = await looks(ann);
    assert.equal(seen.screen, "home");
    assert.deepEqual([seen.fits, seen.shown.userlistbox, seen.shown.received_video, seen.shown.welcome], [true, true, false, false], "home: the people, no video box");
    await userItem(ann, `bo-${size}`).click();
    await bo.locator("#accept-button").waitFor();
    const ringing = await looks(bo);
    assert.ok(ringing.shown["accept-button"], "Accept is in view");
    await acceptCall(bo);
    await assertMediaFlows(bo, `bo-${size} receives ann`);
    for (const page of [ann, bo]) {
      seen = await looks(page);
      assert.equal(seen.screen, "call");
      assert.ok(seen.fits && seen.shown["hangup-button"] && seen.namedControls && seen.playsinline, JSON.stringify(seen));
      const least = size === "phone" ? 0.6 : 0.35;
      assert.ok(seen.videoShare > least, `the other person takes ${Math.round(seen.videoShare * 100)}% of the window (at least ${least * 100}%)`);
    }
    if (size === "phone") {
      // On a phone chat opens over the call, and closes again.
      assert.equal((await looks(ann)).shown.text, false);
      await ann.click("#chat-button");
      assert.equal((await looks(ann)).shown.text, true);
      await ann.click("#chat-button");
    }
    await ann.click("#hangup-button");
    await assertCallEnded(bo, `bo-${size}`);
    assert.equal((await looks(bo)).screen, "home", "after the call, back to the people");
    assertNoProblems(ann, bo);
    await ann.context().close();
    await bo.context().close();
  });
}

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

test("before signing in, the camera and microphone can be checked; signing in lets go of them", async () => {
  const page = await openPage(env.browser, env.duet.url);
  await page.locator("#login:not([disabled])").waitFor();
  assert.equal(await page.isVisible("#preview_video"), false, "the camera opens only when asked");
  await page.click("#check-button");
  await eventually("the preview to show the camera", () =>
    page.evaluate(() => document.getElementById("preview_video").videoWidth > 16),
  );
  await eventually("the meter to show the microphone", () =>
    page.evaluate(() => document.getElementById("mic-level").value > 0),
  );
  assert.ok((await page.locator("#check-camera option").count()) >= 1, "the cameras to pick from");
  assert.ok((await page.locator("#check-microphone option").count()) >= 1, "the microphones to pick from");
  await signIn(page, "checker");
  const live = await page.evaluate(() => document.getElementById("preview_video").srcObject);
  assert.equal(live, null, "signing in closes the preview");
  assertNoProblems(page);
  await page.context().close();
});

test("when a call starts, the keyboard is on the control bar", async () => {
  const ann = await openPage(env.browser, env.duet.url);
  const bo = await openPage(env.browser, env.duet.url);
  await signIn(ann, "focus-ann");
  await signIn(bo, "focus-bo");
  await userItem(ann, "focus-bo").click();
  await bo.locator("#accept-button:focus").waitFor();
  await bo.keyboard.press("Enter");
  await bo.locator("#mute-button:focus").waitFor();
  await ann.locator("#mute-button:focus").waitFor();
  await ann.click("#hangup-button");
  await assertCallEnded(bo, "focus-bo");
  assertNoProblems(ann, bo);
  await ann.context().close();
  await bo.context().close();
});
