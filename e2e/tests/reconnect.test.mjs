// Surviving the server: duet restarts mid-call; media goes on (it never passes through
// duet), both pages reconnect with backoff, resume their names, and the new server knows
// their call again.

import { test } from "node:test";
import assert from "node:assert/strict";
import { eventually, launchBrowser, startDuet, userItem } from "../lib/harness.mjs";
import { assertCallEnded, assertMediaFlows, closeCleanly, twoPeopleInACall } from "../lib/assertions.mjs";

test("a server restart mid-call: media keeps flowing, the pages reconnect, the user list and the call come back", async () => {
  let duet = await startDuet(["--no-turn"]);
  const browser = await launchBrowser();
  try {
    const env = { browser, duet };
    const [ann, bo] = await twoPeopleInACall(env, "ann", "bo");
    await assertMediaFlows(ann, "ann receives bo");

    await duet.stop();
    await ann.locator("#status", { hasText: "Reconnecting" }).waitFor();
    await assertMediaFlows(bo, "bo receives ann while the server is down");

    const { host } = new URL(duet.url);
    duet = await startDuet(["--no-turn"], { listen: host });
    for (const page of [ann, bo]) {
      await page.locator("#status", { hasText: "Reconnected" }).waitFor({ timeout: 20_000 });
    }
    assert.match(await ann.textContent("#whoami"), /Signed in as ann$/, "no 'name taken' for yourself");
    // (The people list is out of sight during a call: it is there, not shown.)
    await userItem(ann, "bo").waitFor({ state: "attached" });
    await eventually("the new server to list both in a call", async () =>
      (await userItem(ann, "bo").getAttribute("data-busy")) === "true",
    );
    await assertMediaFlows(bo, "bo receives ann after the restart");

    // The restarted server routes the hang-up: the call is known again.
    await ann.click("#hangup-button");
    await assertCallEnded(bo, "bo");
    assert.match(await bo.textContent("#status"), /ann hung up/);
    // The browser itself logs each refused reconnect while the server was down.
    for (const page of [ann, bo]) page.problems = page.problems.filter((p) => !p.includes("ERR_CONNECTION_REFUSED"));
    await closeCleanly(ann, bo);
  } finally {
    await browser.close();
    await duet.stop();
  }
});
