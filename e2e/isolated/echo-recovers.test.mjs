// The echo call recovers from loss: UDP is cut for a moment mid-call (in this test's own
// network namespace), frames are lost both ways, and the reflected video comes back,
// because the echo passes the decoder's key frame requests on to the browser's own
// encoder and str0m and the browser repair what NACKs can.

import { test } from "node:test";
import assert from "node:assert/strict";
import { openPage, signIn, sleep, useDuetAndBrowser, userItem } from "../lib/harness.mjs";
import { assertMediaFlows, closeCleanly, videoMovesAgain } from "../lib/assertions.mjs";
import { cutUdp, restoreUdp } from "../lib/netcut.mjs";

const env = useDuetAndBrowser();

/** Feedback the page's own video sender received (from the echo, the only peer). */
const senderFeedback = (page) =>
  page.evaluate(async () => {
    for (const r of (await window.__pcs.at(-1).getStats()).values()) {
      if (r.type === "outbound-rtp" && r.kind === "video") return { plis: r.pliCount ?? 0, nacks: r.nackCount ?? 0 };
    }
    return null;
  });

test("the reflected video recovers after packets are lost both ways", async () => {
  const ann = await openPage(env.browser, env.duet.url);
  await signIn(ann, "ann");
  await userItem(ann, "echo").click();
  await assertMediaFlows(ann, "ann gets her own media back");
  const before = await senderFeedback(ann);

  cutUdp();
  try {
    await sleep(1500);
  } finally {
    restoreUdp();
  }
  await videoMovesAgain(ann, "ann's echo");
  await assertMediaFlows(ann, "ann's echo flows again");
  const after = await senderFeedback(ann);
  assert.ok(
    after.plis > before.plis || after.nacks > before.nacks,
    `the echo passed feedback on to ann's encoder (PLI ${before.plis}→${after.plis}, NACK ${before.nacks}→${after.nacks})`,
  );
  console.log(`# feedback to ann's sender: PLI ${before.plis}→${after.plis}, NACK ${before.nacks}→${after.nacks}`);
  await ann.click("#hangup-button");
  await closeCleanly(ann);
});
