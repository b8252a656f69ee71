// The page works on a phone screen and from the keyboard alone.

import { test } from "node:test";
import assert from "node:assert/strict";
import { acceptCall, eventually, openPage, signIn, userItem, useDuetAndBrowser } from "../lib/harness.mjs";
import { assertCallEnded, assertMediaFlows, assertNoProblems, closeCleanly, twoPeopleInACall } from "../lib/assertions.mjs";

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

// "zoomed": a 1280x800 window at 200 % zoom (640x400 CSS pixels), which must stay usable.
for (const [size, width, height] of [["phone", 390, 844], ["desktop", 1280, 800], ["zoomed", 640, 400]]) {
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
      assert.ok(seen.videoShare >= 0.6, `the other person takes ${Math.round(seen.videoShare * 100)}% of the window (at least 60%)`);
    }
    // At every size chat opens over the call, and closes again.
    assert.equal((await looks(ann)).shown.text, false);
    await ann.click("#chat-button");
    assert.equal((await looks(ann)).shown.text, true);
    await ann.click("#chat-button");
    assert.equal((await looks(ann)).shown.text, false);
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
  await userItem(ann, "key-bo").getByRole("button", { name: "Video call key-bo" }).focus();
  await ann.keyboard.press("Enter");
  // The incoming call takes the callee's focus to Accept: Enter picks up.
  await bo.locator("#accept-button:focus").waitFor();
  await bo.keyboard.press("Enter");
  await assertMediaFlows(bo, "key-bo receives key-ann");
  await ann.focus("#hangup-button");
  await ann.keyboard.press("Enter");
  await assertCallEnded(bo, "key-bo");
  // Once the call is over, the list no longer says key-bo is in one.
  await eventually("key-bo's label to be a plain Video call again", async () =>
    (await userItem(ann, "key-bo").locator(".call-button.video").getAttribute("aria-label")) === "Video call key-bo",
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

test("on a phone the settings and the chat are a tap away, and More holds the call's other controls", async () => {
  const ann = await openPage(env.browser, env.duet.url);
  const bo = await openPage(env.browser, env.duet.url);
  for (const page of [ann, bo]) await page.setViewportSize({ width: 390, height: 844 });
  await ann.locator("#login:not([disabled])").waitFor();
  assert.equal(await ann.isVisible("#language"), false, "settings wait behind the menu");
  await ann.click("#menu-button");
  assert.equal(await ann.getAttribute("#menu-button", "aria-expanded"), "true");
  assert.ok((await ann.isVisible("#language")) && (await ann.isVisible("#relay-only")), "the menu opens the settings");
  await ann.keyboard.press("Escape");
  assert.equal(await ann.isVisible("#language"), false, "Escape closes the menu");
  assert.equal(await ann.evaluate(() => document.activeElement.id), "menu-button", "and gives the keyboard back to its button");

  await signIn(ann, "tap-ann");
  await signIn(bo, "tap-bo");
  assert.equal(await ann.isVisible("#chatbox"), false, "at home the people come first, chat is closed");
  await bo.click("#home-chat-button");
  await bo.fill("#text", "are you there?");
  await bo.press("#text", "Enter");
  await ann.locator("#home-chat-button[data-unread='1']").waitFor();
  await ann.click("#home-chat-button");
  await ann.locator("#chatbox li", { hasText: "are you there?" }).waitFor();
  assert.equal(await ann.getAttribute("#home-chat-button", "data-unread"), null, "opening the chat reads what was new");
  await ann.click("#home-chat-button");

  await userItem(ann, "tap-bo").click();
  await acceptCall(bo);
  await assertMediaFlows(bo, "tap-bo receives tap-ann");
  assert.equal(await bo.isVisible("#share-button"), false, "the bar holds the main controls only");
  const bar = await bo.evaluate(() =>
    [...document.querySelectorAll(".call-controls button")].filter((b) => b.getBoundingClientRect().width > 0).map((b) => b.getBoundingClientRect().top),
  );
  assert.ok(Math.max(...bar) - Math.min(...bar) < 4, `one row of buttons on a phone (tops ${bar.join(", ")})`);
  await bo.click("#more-button");
  assert.ok((await bo.isVisible("#share-button")) && (await bo.isVisible("#fit-button")), "More shows the other controls");
  await bo.click("#fit-button");
  assert.equal(await bo.isVisible("#share-button"), false, "choosing one closes the sheet");
  await ann.click("#hangup-button");
  await assertCallEnded(bo, "tap-bo");
  await closeCleanly(ann, bo);
});

test("in a call the controls step aside when idle and come back on a touch; your own picture moves to the corner it is dragged to", async () => {
  const [ann, bo] = await twoPeopleInACall(env, "drag-ann", "drag-bo");
  await ann.setViewportSize({ width: 390, height: 844 });
  const opacity = () => ann.evaluate(() => Number(getComputedStyle(document.querySelector(".call-controls")).opacity));
  await eventually("the controls to fade after a few idle seconds", async () => (await opacity()) === 0, { timeout: 10_000 });
  assert.equal(await ann.isVisible("#received_video"), true);

  // A finger on the screen: Chromium's touch input, as on a phone.
  const cdp = await ann.context().newCDPSession(ann);
  await cdp.send("Emulation.setTouchEmulationEnabled", { enabled: true, maxTouchPoints: 1 });
  const touch = async (type, x, y) => cdp.send("Input.dispatchTouchEvent", { type, touchPoints: type === "touchEnd" ? [] : [{ x, y }] });
  const self = await ann.locator("#local_video").boundingBox();
  const stage = await ann.locator(".camera-box").boundingBox();
  await touch("touchStart", self.x + self.width / 2, self.y + self.height / 2);
  await eventually("a touch to bring the controls back", async () => (await opacity()) === 1);
  for (let step = 1; step <= 10; step++) {
    const x = self.x + self.width / 2 - ((self.x - stage.x) * step) / 10;
    const y = self.y + self.height / 2 + ((stage.y + stage.height - self.y - self.height) * step) / 10;
    await touch("touchMove", x, y);
  }
  await touch("touchEnd");
  assert.equal(await ann.getAttribute("#local_video", "data-corner"), "bottom-left");
  const moved = await ann.locator("#local_video").boundingBox();
  assert.ok(moved.x - stage.x < 30 && stage.y + stage.height - (moved.y + moved.height) < 80, `your picture sits bottom left (${JSON.stringify(moved)} in ${JSON.stringify(stage)})`);
  assert.equal(await ann.evaluate(() => localStorage.getItem("duet.selfView")), "bottom-left", "kept for the next call");
  await ann.click("#hangup-button");
  await assertCallEnded(bo, "drag-bo");
  await closeCleanly(ann, bo);
});
