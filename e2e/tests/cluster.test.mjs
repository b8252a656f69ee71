// Two duet nodes on one Redis behind haproxy, as an operator runs them: people pinned to
// different nodes see and call each other; a node killed mid-call or mid-ring, and Redis
// killed or paused, leave pages that reconnect through the balancer and carry on.

import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { acceptCall, eventually, launchBrowser, openPage, signIn, userItem } from "../lib/harness.mjs";
import { assertCallEnded, assertCallRestored, assertMediaFlows, closeCleanly } from "../lib/assertions.mjs";
import { pinnedTo, startCluster } from "../lib/cluster.mjs";

const env = {};

before(async () => {
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
});

afterEach(async () => {
  await env.cluster?.stop();
  env.cluster = null;
});

/** A person's page, pinned by the balancer to `node`, signed in as `name`. */
async function person(node, name) {
  const page = await openPage(env.browser, env.cluster.url, { cookies: pinnedTo(env.cluster, node) });
  await signIn(page, name);
  return page;
}

/** The people the server last listed to `page` (its own name included, the echo service
 * left out), checked to be each once. */
function listedOnce(page) {
  const names = (page.received.findLast((m) => m.type === "userlist")?.users ?? []).filter((n) => n !== "echo");
  assert.equal(new Set(names).size, names.length, `a name is listed twice: ${names}`);
  return [...names].sort();
}

/** What `page`'s sockets last carried (but candidates and lists), for a failure's message. */
const trail = (page) =>
  page.wire
    .filter(({ msg }) => !["ice-servers", "userlist", "new-ice-candidate"].includes(msg?.type))
    .slice(-14)
    .map(({ dir, msg }) => {
      if (!msg) return `[${dir}]`;
      const detail = msg.code ?? msg.partner ?? msg.target ?? msg.name ?? "";
      return `${dir === "out" ? ">" : "<"}${msg.type}${detail ? `(${detail})` : ""}`;
    })
    .join(" ");

/** Runs `steps`; a failure says what each page's sockets carried and its status line. */
async function explained(pages, steps) {
  try {
    await steps();
  } catch (e) {
    const said = await Promise.all(pages.map(async (page) => `${await page.textContent("#status")} | ${trail(page)}`));
    throw new Error(`${e.message}\n${said.map((s, i) => `page ${i + 1}: ${s}`).join("\n")}`);
  }
}

/** The browser logs each refused reconnect while a node or Redis was away. */
function forgetReconnectErrors(...pages) {
  for (const page of pages) page.problems = page.problems.filter((p) => !/WebSocket|ERR_CONNECTION/.test(p));
}

/** ann calls bo and bo accepts; media flows both ways. */
async function callAndSee(ann, bo, annName, boName) {
  await userItem(ann, boName).click();
  await acceptCall(bo);
  await assertMediaFlows(bo, `${boName} receives ${annName}`);
  await assertMediaFlows(ann, `${annName} receives ${boName}`);
}

test("two nodes behind haproxy: people on different nodes sign in, list, call, get busy and hang up", async () => {
  env.cluster = await startCluster();
  const ann = await person("one", "ann");
  const bo = await person("two", "bo");
  const cy = await person("one", "cy");
  for (const [page, others] of [[ann, ["bo", "cy"]], [bo, ["ann", "cy"]], [cy, ["ann", "bo"]]]) {
    for (const name of others) await userItem(page, name).waitFor({ state: "attached" });
  }
  // Really two nodes: node one serves the lobby, node two relays bo's socket to it.
  assert.equal(await env.cluster.figure("two", "duet_cluster_relayed_sockets"), 1, "bo is relayed from node two");
  assert.equal(await env.cluster.figure("one", "duet_cluster_rooms"), 1, "node one serves the lobby");
  assert.equal(await env.cluster.figure("one", "duet_cluster_nodes"), 1, "node one hears node two");

  await callAndSee(ann, bo, "ann", "bo");
  await userItem(cy, "bo").click();
  await cy.locator("#status", { hasText: "bo is in another call" }).waitFor();
  await ann.click("#hangup-button");
  await assertCallEnded(bo, "bo");
  assert.match(await bo.textContent("#status"), /ann hung up/);
  await closeCleanly(ann, bo, cy);
});

test("a node killed mid-call: media goes on, its page resumes through the other node, hang-up reaches the other side", async () => {
  env.cluster = await startCluster();
  const ann = await person("one", "ann");
  const bo = await person("two", "bo");
  await callAndSee(ann, bo, "ann", "bo");

  env.cluster.nodes.one.proc.kill("SIGKILL");
  await explained([ann, bo], async () => {
    await assertMediaFlows(bo, "bo receives ann while ann's node is gone");
    await assertCallRestored(ann, "ann", "bo");
    await assertCallRestored(bo, "bo", "ann");
    assert.match(await ann.textContent("#whoami"), /Signed in as ann$/, "ann keeps her name");
    await assertMediaFlows(ann, "ann receives bo after the move");
    await ann.click("#hangup-button");
    await assertCallEnded(bo, "bo");
  });
  assert.match(await bo.textContent("#status"), /ann hung up/);
  assert.deepEqual(listedOnce(bo), ["ann", "bo"]);
  forgetReconnectErrors(ann, bo);
  await closeCleanly(ann, bo);
});

test("a ringing call whose node dies ends on both sides in words", async () => {
  env.cluster = await startCluster();
  const ann = await person("one", "ann");
  const bo = await person("two", "bo");
  await userItem(ann, "bo").click();
  await bo.locator("#accept-button").waitFor();

  env.cluster.nodes.one.proc.kill("SIGKILL");
  for (const page of [ann, bo]) {
    await page.locator("#ended-text", { hasText: "while the call was ringing" }).waitFor({ timeout: 30_000 });
  }
  assert.ok(await bo.locator("#accept-button").isHidden(), "bo's phone stops ringing");
  // They can call again, through the node that is left.
  await callAndSee(bo, ann, "bo", "ann");
  forgetReconnectErrors(ann, bo);
  await closeCleanly(ann, bo);
});

test("Redis killed and restarted, then paused past every timeout: the nodes recover and calls between them work", async () => {
  env.cluster = await startCluster();
  const ann = await person("one", "ann");
  const bo = await person("two", "bo");

  await env.cluster.restartRedis();
  await callAndSee(ann, bo, "ann", "bo");
  await ann.click("#hangup-button");
  await assertCallEnded(bo, "bo");

  await env.cluster.pauseRedis(8_000);
  await eventually("both nodes to hear each other again", async () =>
    (await env.cluster.figure("one", "duet_cluster_nodes")) === 1 && (await env.cluster.figure("two", "duet_cluster_nodes")) === 1,
  { timeout: 20_000 });
  await eventually("the pages to be signed in and listed again", async () =>
    (await userItem(ann, "bo").count()) === 1 && (await userItem(bo, "ann").count()) === 1,
  { timeout: 30_000 });
  await callAndSee(bo, ann, "bo", "ann");
  await bo.click("#hangup-button");
  await assertCallEnded(ann, "ann");
  // One list, each name once, seen alike from both nodes.
  assert.deepEqual(listedOnce(ann), ["ann", "bo"]);
  assert.deepEqual(listedOnce(bo), ["ann", "bo"]);
  // A newcomer cannot take a name someone holds.
  const other = await person("two", "ann");
  assert.doesNotMatch(await other.textContent("#whoami"), /Signed in as ann$/);
  forgetReconnectErrors(ann, bo, other);
  await closeCleanly(ann, bo, other);
});
