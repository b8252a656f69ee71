// Firefox and Chromium call each other through duet's UI: where WebRTC apps break is
// between engines (codecs, candidate types, stats names). Firefox is Debian's ESR,
// driven over WebDriver BiDi; its camera is a moving canvas (its fake one is flat).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { acceptCall, eventually, launchBrowser, mediaSample, openPage, signIn, startDuet, userItem } from "../lib/harness.mjs";
import { assertCallEnded, assertMediaFlows, closeCleanly } from "../lib/assertions.mjs";
import { firefoxAccept, firefoxCall, firefoxSignIn, launchFirefox, openFirefoxPage } from "../lib/firefox.mjs";

const env = { duet: null, chromium: null, firefox: null };
before(async () => {
  env.duet = await startDuet();
  [env.chromium, env.firefox] = await Promise.all([launchBrowser(), launchFirefox()]);
});
after(async () => {
  await env.firefox?.close();
  await env.chromium?.close();
  await env.duet?.stop();
});

test("Chromium calls Firefox: it rings, media flows both ways, mute shows, Firefox hangs up", async () => {
  const ann = await openPage(env.chromium, env.duet.url);
  const fox = await openFirefoxPage(env.firefox, env.duet.url);
  await signIn(ann, "ann-chromium");
  await firefoxSignIn(fox, "fox-firefox");
  await userItem(ann, "fox-firefox").click();
  await firefoxAccept(fox);
  await assertMediaFlows(fox, "Firefox receives Chromium");
  await assertMediaFlows(ann, "Chromium receives Firefox");
  await ann.click("#mute-button");
  await fox.waitForSelector("#remote-muted", { visible: true });
  await fox.click("#camera-button");
  await ann.locator("#remote-camera-off").waitFor();
  await fox.click("#hangup-button");
  await assertCallEnded(ann, "Chromium");
  await assertCallEnded(fox, "Firefox");
  await closeCleanly(ann, fox);
});

test("Firefox calls Chromium, relay only, through duet's TURN", async () => {
  const fox = await openFirefoxPage(env.firefox, env.duet.url);
  const bo = await openPage(env.chromium, env.duet.url);
  // Puppeteer's window is 800 pixels wide: the settings wait behind the menu there.
  if (await fox.evaluate(() => !document.getElementById("relay-only").checkVisibility())) await fox.click("#menu-button");
  await fox.click("#relay-only");
  await bo.check("#relay-only");
  await firefoxSignIn(fox, "fox-relay");
  await signIn(bo, "bo-relay");
  await firefoxCall(fox, "bo-relay");
  await acceptCall(bo);
  const seen = await assertMediaFlows(bo, "Chromium receives Firefox via TURN", { candidateType: "relay" });
  await assertMediaFlows(fox, "Firefox receives Chromium via TURN");
  assert.equal(seen.localType, "relay");
  // Firefox names its side of a relayed pair too.
  const foxSide = await eventually("Firefox's selected pair", () =>
    fox.evaluate(async () => {
      const stats = await window.__pcs.at(-1).getStats();
      for (const r of stats.values()) {
        if (r.type === "candidate-pair" && r.selected) return stats.get(r.localCandidateId)?.candidateType;
      }
      return null;
    }),
  );
  assert.equal(foxSide, "relay", "Firefox sends through the relay");
  await bo.click("#hangup-button");
  await assertCallEnded(fox, "Firefox");
  await closeCleanly(fox, bo);
});

test("Firefox makes a voice call to Chromium: sound both ways, no camera, then Chromium's camera on", async () => {
  const fox = await openFirefoxPage(env.firefox, env.duet.url);
  const bo = await openPage(env.chromium, env.duet.url);
  await firefoxSignIn(fox, "fox-voice");
  await signIn(bo, "bo-voice");
  await firefoxCall(fox, "bo-voice", { voice: true });
  await bo.locator("#incoming-text", { hasText: "Voice call from fox-voice" }).waitFor();
  await acceptCall(bo);
  await eventually("Chromium hears Firefox", async () => {
    const s = await mediaSample(bo);
    return s && s.audioPackets > 20 && s.audioEnergy > 0;
  });
  await eventually("Firefox hears Chromium", async () => (await mediaSample(fox))?.audioPackets > 20);
  assert.equal((await mediaSample(bo)).framesDecoded, 0, "no video in a voice call");
  assert.equal(await fox.evaluate(() => document.getElementById("local_video").srcObject.getVideoTracks().length), 0);
  await bo.getByRole("button", { name: "Camera on" }).click();
  await assertMediaFlows(fox, "Firefox sees Chromium's camera, turned on mid-call");
  await fox.click("#hangup-button");
  await assertCallEnded(bo, "Chromium");
  await closeCleanly(fox, bo);
});

test("Firefox calls echo and gets its own picture and sound back", async () => {
  const fox = await openFirefoxPage(env.firefox, env.duet.url);
  await firefoxSignIn(fox, "fox-echo");
  await firefoxCall(fox, "echo");
  await assertMediaFlows(fox, "Firefox's echo");
  await fox.click("#hangup-button");
  await assertCallEnded(fox, "Firefox");
  await closeCleanly(fox);
});
