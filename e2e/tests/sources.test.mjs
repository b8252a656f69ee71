// Changing what is sent mid-call: sharing the screen and going back to the camera;
// switching to another camera or microphone. All by replacing tracks in place.

import { test } from "node:test";
import assert from "node:assert/strict";
import { eventually, mediaSample, useDuetAndBrowser } from "../lib/harness.mjs";
import { assertMediaFlows, twoPeopleInACall, closeCleanly } from "../lib/assertions.mjs";

// Chromium's fake screen for getDisplayMedia is 1280x720; the fake camera is 640x480.
// Three fake cameras and several fake microphones. Chromium's fake_device_1 is a Y16
// depth camera that WebRTC's encoder drops every frame of (measured: framesEncoded stops,
// also without duet); fake_device_0 (I420) and fake_device_2 (MJPEG) are real pictures.
const env = useDuetAndBrowser(
  [],
  ["--auto-select-desktop-capture-source=Entire screen", "--use-fake-device-for-media-stream=device-count=3"],
);

/** The label of the track ann's call sends, of `kind`. */
const sending = (page, kind) =>
  page.evaluate((kind) => window.__pcs.at(-1).getSenders().find((s) => s.track?.kind === kind)?.track.label, kind);

test("the screen can be shared mid-call and the camera comes back, media flowing throughout", async () => {
  const [ann, bo] = await twoPeopleInACall(env, "ann", "bo");
  const localSdp = () => ann.evaluate(() => window.__pcs.at(-1).localDescription.sdp);
  const sdpBefore = await localSdp();

  await ann.click("#share-button");
  await eventually("bo to receive a screen-sized picture", async () => (await mediaSample(bo))?.videoWidth === 1280);
  assert.equal(await ann.textContent("#share-button"), "Stop sharing");
  await assertMediaFlows(bo, "bo receives ann's screen");

  await ann.click("#share-button");
  await eventually("bo to receive the camera again", async () => (await mediaSample(bo))?.videoWidth === 640);
  assert.equal(await ann.textContent("#share-button"), "Share screen");
  await assertMediaFlows(bo, "bo receives ann's camera again");
  assert.equal(await localSdp(), sdpBefore, "no renegotiation: the track was replaced in place");
  await closeCleanly(ann, bo);
});

test("switching camera and microphone mid-call: the other side keeps receiving, from the new devices", async () => {
  const [ann, bo] = await twoPeopleInACall(env, "cam-ann", "cam-bo");
  const localSdp = () => ann.evaluate(() => window.__pcs.at(-1).localDescription.sdp);
  const sdpBefore = await localSdp();
  await eventually("the camera picker to offer the cameras", async () =>
    (await ann.locator("#camera-select option").count()) === 3 && (await ann.isEnabled("#camera-select")),
  );
  assert.equal(await sending(ann, "video"), "fake_device_0");

  await ann.selectOption("#camera-select", { label: "fake_device_2" });
  await eventually("ann to send the other camera", async () => (await sending(ann, "video")) === "fake_device_2");
  await ann.locator("#status", { hasText: "Now using fake_device_2" }).waitFor();
  const before = await mediaSample(bo);
  await assertMediaFlows(bo, "cam-bo receives the other camera");
  assert.ok((await mediaSample(bo)).framesDecoded > before.framesDecoded + 10, "frames keep coming from the new camera");
  assert.equal(
    await ann.evaluate(() => document.getElementById("local_video").srcObject.getVideoTracks()[0].label),
    "fake_device_2",
    "ann's own preview shows the new camera",
  );

  const microphones = await ann.locator("#microphone-select option").allTextContents();
  const other = microphones.find((label) => label !== (microphones[0]));
  await ann.selectOption("#microphone-select", { label: other });
  await eventually("ann to send the other microphone", async () => (await sending(ann, "audio")) === other);
  await assertMediaFlows(bo, "cam-bo hears the other microphone");
  assert.equal(await localSdp(), sdpBefore, "no renegotiation: tracks were replaced in place");
  await closeCleanly(ann, bo);
});

test("Switch camera goes to the next camera in a call, and the other side sees it", async () => {
  const [ann, bo] = await twoPeopleInACall(env, "flip-ann", "flip-bo");
  await ann.locator("#switch-camera-button:not([hidden]):not([disabled])").waitFor();
  assert.equal(await ann.getAttribute("#switch-camera-button", "aria-label"), null, "its label is its visible word");
  assert.equal(await ann.textContent("#switch-camera-button"), "Switch camera");
  await ann.click("#switch-camera-button");
  await eventually("ann to send the second camera", async () => (await sending(ann, "video")) === "fake_device_1");
  await ann.click("#switch-camera-button");
  await eventually("ann to send the third camera", async () => (await sending(ann, "video")) === "fake_device_2");
  await assertMediaFlows(bo, "flip-bo receives the third camera");
  assert.equal(await ann.inputValue("#camera-select"), await ann.evaluate(() => document.getElementById("local_video").srcObject.getVideoTracks()[0].getSettings().deviceId), "the picker follows");
  await ann.click("#switch-camera-button");
  await eventually("the cameras to go round to the first", async () => (await sending(ann, "video")) === "fake_device_0");
  await closeCleanly(ann, bo);
});
