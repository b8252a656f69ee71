// What "the call works" means, checked the way a user would notice it.

import assert from "node:assert/strict";
import { acceptCall, eventually, mediaSample, openPage, remotePixels, signIn, sleep, userItem } from "./harness.mjs";

/**
 * Media flows into `page`: frames decoded and growing, audio arriving (unless `audio` is
 * false: a video-only sender), moving pixels.
 */
export async function assertMediaFlows(page, label, { candidateType, audio = true } = {}) {
  await eventually(`${label}: 10 decoded remote frames`, async () => {
    const s = await mediaSample(page);
    return s && s.framesDecoded >= 10 && s.videoWidth > 16 ? s : null;
  });
  const first = await mediaSample(page);
  const pixelsBefore = await remotePixels(page);
  await sleep(1000);
  const second = await mediaSample(page);
  const pixelsAfter = await remotePixels(page);
  assert.ok(second.framesDecoded > first.framesDecoded, `${label}: video frames keep arriving`);
  assert.ok(second.videoBytes > first.videoBytes, `${label}: video bytes keep arriving`);
  if (audio) {
    assert.ok(second.audioPackets > first.audioPackets, `${label}: audio packets keep arriving`);
    assert.ok(second.audioEnergy > 0, `${label}: the sound is heard`);
  }
  assert.ok(second.videoWidth > 16, `${label}: the remote video has a real size (${second.videoWidth})`);
  assert.notEqual(pixelsAfter.hash, pixelsBefore.hash, `${label}: the remote picture moves`);
  assert.ok(pixelsAfter.contrast > 20, `${label}: the remote picture is not flat`);
  if (candidateType) {
    assert.equal(second.localType, candidateType, `${label}: local candidate type`);
    assert.equal(second.remoteType, candidateType, `${label}: remote candidate type`);
  }
  return second;
}

/** After a network cut: waits until `page`'s remote video decodes frames again. */
export async function videoMovesAgain(page, label, { timeout = 20_000 } = {}) {
  await eventually(`${label}: the video to move again`, async () => {
    const first = await mediaSample(page);
    await sleep(500);
    const second = await mediaSample(page);
    return second.framesDecoded > first.framesDecoded + 3;
  }, { timeout });
}

/** The call is over on `page`: videos emptied, Hang Up disabled. */
export async function assertCallEnded(page, label) {
  await eventually(`${label}: the call to end`, () =>
    page.evaluate(() => {
      const remote = document.getElementById("received_video");
      const local = document.getElementById("local_video");
      const button = document.getElementById("hangup-button");
      return remote.srcObject === null && local.srcObject === null && button.disabled;
    }),
  );
}

/**
 * After a reconnect, the server knows `page`'s call again: it answered the page's resume,
 * and a user list it sent since shows `me` and `peer` in a call, on the page too. (A page
 * says "Reconnected" as soon as its socket opens, before its session is back; and until
 * the new list arrives the page still shows the one from before.)
 */
export async function assertCallRestored(page, me, peer, { timeout = 30_000 } = {}) {
  await eventually(`the server to list ${me} and ${peer} in a call again`, () => {
    const since = page.received.findLastIndex((m) => m.type === "resumed");
    const list = since >= 0 && page.received.slice(since).findLast((m) => m.type === "userlist");
    return Boolean(list) && [me, peer].every((name) => list.inCall?.includes(name));
  }, { timeout });
  assert.equal(await userItem(page, peer).getAttribute("data-busy"), "true", `${me}'s page shows ${peer} in a call`);
}

export function assertNoProblems(...pages) {
  for (const page of pages) assert.deepEqual(page.problems, [], "no console or page errors");
}

/**
 * Two people, each in their own browser context, signed in as `caller` and `callee`; the
 * caller clicks the callee's name, the callee accepts, and the test waits until the callee
 * receives media.
 */
export async function twoPeopleInACall(env, caller, callee, url = env.duet.url) {
  const a = await openPage(env.browser, url);
  const b = await openPage(env.browser, url);
  await signIn(a, caller);
  await signIn(b, callee);
  await userItem(a, callee).click();
  await acceptCall(b);
  await assertMediaFlows(b, `${callee} receives ${caller}`);
  return [a, b];
}

/** No console errors on any page; their contexts closed (Playwright's or puppeteer's pages). */
export async function closeCleanly(...pages) {
  assertNoProblems(...pages);
  for (const page of pages) await (page.browserContext ? page.browserContext() : page.context()).close();
}
