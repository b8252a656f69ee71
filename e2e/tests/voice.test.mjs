// Voice calls in a browser. ann makes a voice call to bo: bo sees "Voice call from ann";
// neither page asks for a camera; they hear each other and no video flows either way;
// the call screen shows the other's initials and the timer. bo turns the camera on
// mid-call (no renegotiation: the offer carried an empty video line) and ann sees it;
// off again, the camera is let go of and ann sees the initials again. Both find a voice
// call in Recent; axe finds nothing serious on the voice call screen.

import { test } from "node:test";
import assert from "node:assert/strict";
import { eventually, mediaSample, openPage, signIn, sleep, useDuetAndBrowser, userItem } from "../lib/harness.mjs";
import { assertMediaFlows, closeCleanly } from "../lib/assertions.mjs";
import { violations } from "../lib/axe.mjs";

const env = useDuetAndBrowser();

/** A signed-in guest page whose camera and microphone requests are written down. */
async function guest(name) {
  const page = await openPage(env.browser, env.duet.url);
  await page.addInitScript(() => {
    const devices = navigator.mediaDevices;
    const original = devices.getUserMedia.bind(devices);
    window.__asked = [];
    devices.getUserMedia = (constraints) => {
      window.__asked.push({ audio: Boolean(constraints.audio), video: Boolean(constraints.video) });
      return original(constraints);
    };
  });
  await page.reload();
  await signIn(page, name);
  return page;
}

/** Whether `page` ever asked for a camera. */
const askedForCamera = (page) => page.evaluate(() => window.__asked.some((a) => a.video));

/** Video bytes `page` sent and received so far in its call. */
async function videoBytes(page) {
  return page.evaluate(async () => {
    const stats = await window.__pcs.at(-1).getStats();
    let sent = 0;
    let received = 0;
    for (const r of stats.values()) {
      if (r.kind !== "video") continue;
      if (r.type === "outbound-rtp") sent += r.bytesSent ?? 0;
      if (r.type === "inbound-rtp") received += r.bytesReceived ?? 0;
    }
    return { sent, received };
  });
}

test("a voice call needs no camera, sends no video until Camera on, and the camera goes off again", async () => {
  const ann = await guest("voice-ann");
  const bo = await guest("voice-bo");
  await userItem(ann, "voice-bo").getByRole("button", { name: "Voice call voice-bo" }).click();
  await bo.locator("#incoming-text", { hasText: "Voice call from voice-ann" }).waitFor();
  await bo.click("#accept-button");
  // They hear each other.
  for (const [page, label] of [[ann, "ann hears bo"], [bo, "bo hears ann"]]) {
    await eventually(`${label}: sound arrives`, async () => {
      const s = await mediaSample(page);
      return s && s.audioPackets > 20 && s.audioEnergy > 0;
    });
  }
  await ann.locator("#call-timer:not([hidden])").waitFor();
  assert.equal(await ann.locator("#peer-avatar").textContent(), "VB", "bo's initials");
  assert.ok(await ann.locator("#peer-avatar").isVisible());
  assert.equal(await askedForCamera(ann), false, "ann's camera was never asked for");
  assert.equal(await askedForCamera(bo), false, "bo's camera was never asked for");
  await sleep(1_000);
  for (const page of [ann, bo]) assert.deepEqual(await videoBytes(page), { sent: 0, received: 0 }, "no video");
  assert.deepEqual(await violations(ann), [], "the voice call screen");

  // bo turns the camera on: ann sees bo, and the initials step aside.
  await bo.getByRole("button", { name: "Camera on" }).click();
  await assertMediaFlows(ann, "ann sees bo's camera, turned on mid-call");
  await ann.locator("#peer-avatar").waitFor({ state: "hidden" });
  assert.equal(await askedForCamera(bo), true);
  const offers = (page) => page.wire.filter(({ dir, msg }) => dir === "out" && msg?.type === "video-offer").length;
  assert.deepEqual([offers(ann), offers(bo)], [1, 0], "ann's first offer only: no renegotiation");
  // And off again: the camera is let go of, ann sees the initials.
  await bo.getByRole("button", { name: "Camera off" }).click();
  await ann.locator("#peer-avatar").waitFor();
  assert.equal(await bo.evaluate(() => document.getElementById("local_video").srcObject.getVideoTracks().length), 0);
  await ann.click("#hangup-button");
  for (const page of [ann, bo]) {
    await page.locator("#recent-list li").filter({ hasText: /call, 0:\d\d · Voice/ }).waitFor();
  }
  await closeCleanly(ann, bo);
});

test("a video call still asks for the camera and the callee sees an ordinary incoming call", async () => {
  const ann = await guest("video-ann");
  const bo = await guest("video-bo");
  await userItem(ann, "video-bo").getByRole("button", { name: "Video call video-bo" }).click();
  await bo.locator("#incoming-text", { hasText: "video-ann is calling you" }).waitFor();
  await bo.click("#accept-button");
  await assertMediaFlows(bo, "bo sees ann");
  assert.equal(await askedForCamera(ann), true);
  assert.ok(await ann.locator("#peer-avatar").isHidden());
  await ann.click("#hangup-button");
  await closeCleanly(ann, bo);
});
