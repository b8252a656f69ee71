// A TURN-only node: `duet turn` relays the media of a call whose credentials a
// signaling node (`duet serve --external-turn-url … --external-turn-secret-file …`)
// handed out, and its /metrics counts the allocations and the relayed bytes.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acceptCall, eventually, launchBrowser, openPage, signIn, startDuet, userItem } from "../lib/harness.mjs";
import { assertCallEnded, assertMediaFlows, closeCleanly } from "../lib/assertions.mjs";

const dir = mkdtempSync(join(tmpdir(), "duet-turn-node-"));
const secretFile = join(dir, "turn-secret");
writeFileSync(secretFile, "a secret the signaling and TURN nodes share\n", { mode: 0o600 });
const env = {};

/** A TCP port nobody holds now (the metrics listener must be known to scrape it). */
const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

before(async () => {
  env.metricsPort = await freePort();
  env.node = await startDuet(
    ["--turn-secret-file", secretFile, "--turn-threads", "2", "--metrics-listen", `127.0.0.1:${env.metricsPort}`],
    { command: "turn" },
  );
  env.signaling = await startDuet([
    "--external-turn-url", `turn:${env.node.url}?transport=udp`,
    "--external-turn-url", `turn:${env.node.url}?transport=tcp`,
    "--external-turn-secret-file", secretFile,
  ]);
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await env.signaling?.stop();
  await env.node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The TURN node's figure `name` (summed over its labels). */
async function figure(name) {
  const text = await (await fetch(`http://127.0.0.1:${env.metricsPort}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.split(/[{ ]/)[0] === name)
    .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}

test("a relay-only call goes through a duet turn node with credentials from the signaling node", async () => {
  const ann = await openPage(env.browser, env.signaling.url);
  const bo = await openPage(env.browser, env.signaling.url);
  for (const page of [ann, bo]) await page.check("#relay-only");
  await signIn(ann, "ann-node");
  await signIn(bo, "bo-node");
  const ice = await eventually("ICE servers from signaling", () => ann.received.find((m) => m.type === "ice-servers"));
  const turn = ice.iceServers.find((s) => s.username);
  assert.deepEqual(turn.urls, [`turn:${env.node.url}?transport=udp`, `turn:${env.node.url}?transport=tcp`], "the node's URLs");

  await userItem(ann, "bo-node").click();
  await acceptCall(bo);
  await assertMediaFlows(bo, "bo receives ann through the TURN node", { candidateType: "relay" });
  await assertMediaFlows(ann, "ann receives bo through the TURN node", { candidateType: "relay" });
  assert.ok((await figure("duet_turn_allocations")) >= 2, "the node holds both sides' allocations");
  const bytes = await figure("duet_turn_relayed_bytes_total");
  await eventually("the relayed bytes to grow", async () => (await figure("duet_turn_relayed_bytes_total")) > bytes + 10_000);
  assert.equal(await figure("duet_signaling_users"), 0, "a TURN node has no signaling");

  await ann.click("#hangup-button");
  await assertCallEnded(bo, "bo-node");
  await closeCleanly(ann, bo);
});
