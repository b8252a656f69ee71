// Surviving the server: duet restarts mid-call; media goes on (it never passes through
// duet), both pages reconnect with backoff, resume their names, and the new server knows
// their call again.

import { test } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, startDuet } from "../lib/harness.mjs";
import { assertCallEnded, assertCallRestored, assertMediaFlows, closeCleanly, twoPeopleInACall } from "../lib/assertions.mjs";

/**
 * ann and bo in a call on a duet started with `options`, through `steps({ann, bo, stop,
 * start})`: stop() ends duet and waits for ann's page to notice, start() starts it again
 * on the same address. Both pages close cleanly afterwards.
 */
async function aCallAndARestart(options, steps) {
  let duet = await startDuet(options);
  const browser = await launchBrowser();
  try {
    const [ann, bo] = await twoPeopleInACall({ browser, duet }, "ann", "bo");
    const stop = async () => {
      await duet.stop();
      await ann.locator("#status", { hasText: "Reconnecting" }).waitFor();
    };
    const start = async () => {
      duet = await startDuet(options, { listen: new URL(duet.url).host });
    };
    await steps({ ann, bo, stop, start });
    // The browser itself logs each refused reconnect while the server was down.
    for (const page of [ann, bo]) page.problems = page.problems.filter((p) => !p.includes("ERR_CONNECTION_REFUSED"));
    await closeCleanly(ann, bo);
  } finally {
    await browser.close();
    await duet.stop();
  }
}

test("a server restart mid-call: media keeps flowing, the pages reconnect, the user list and the call come back", async () => {
  await aCallAndARestart(["--no-turn"], async ({ ann, bo, stop, start }) => {
    await assertMediaFlows(ann, "ann receives bo");
    await stop();
    await assertMediaFlows(bo, "bo receives ann while the server is down");

    await start();
    // (The people list is out of sight during a call: it is there, not shown.)
    await assertCallRestored(ann, "ann", "bo");
    await assertCallRestored(bo, "bo", "ann");
    assert.match(await ann.textContent("#whoami"), /Signed in as ann$/, "no 'name taken' for yourself");
    await assertMediaFlows(bo, "bo receives ann after the restart");

    // The restarted server routes the hang-up: the call is known again.
    await ann.click("#hangup-button");
    await assertCallEnded(bo, "bo");
    assert.match(await bo.textContent("#status"), /ann hung up/);
  });
});

test("hanging up while the server is down reaches the other side as soon as both are back", async () => {
  // A long grace period: bo's call must end because ann hung up, not because time ran out.
  await aCallAndARestart(["--no-turn", "--resume-grace", "60s"], async ({ ann, bo, stop, start }) => {
    await stop();
    await ann.click("#hangup-button");
    await assertCallEnded(ann, "ann, at once");
    assert.ok(await bo.isEnabled("#hangup-button"), "bo's call is on until the server can tell him");

    await start();
    await assertCallEnded(bo, "bo, once both are back");
    assert.match(await bo.textContent("#status"), /ann hung up/);
  });
});
