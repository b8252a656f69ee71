// The same call over HTTPS and WSS with duet's self-signed certificate.

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acceptCall, openPage, signIn, useDuetAndBrowser, userItem } from "../lib/harness.mjs";
import { assertCallEnded, assertMediaFlows, assertNoProblems } from "../lib/assertions.mjs";

const stateDir = mkdtempSync(join(tmpdir(), "duet-state-"));
const env = useDuetAndBrowser(["--tls-self-signed", "--state-dir", stateDir]);
after(() => rmSync(stateDir, { recursive: true, force: true }));

test("a call works over https and wss with --tls-self-signed", async () => {
  assert.match(env.duet.url, /^https:\/\//);
  assert.ok(existsSync(join(stateDir, "self-signed-cert.pem")), "the certificate is kept for next time");
  const ann = await openPage(env.browser, env.duet.url, { ignoreHTTPSErrors: true });
  const bo = await openPage(env.browser, env.duet.url, { ignoreHTTPSErrors: true });
  assert.equal(await ann.evaluate(() => window.isSecureContext), true);
  await signIn(ann, "ann");
  await signIn(bo, "bo");
  assert.equal(await ann.evaluate(() => performance.getEntriesByType("resource").every((e) => e.name.startsWith("https:"))), true);

  await userItem(bo, "ann").click();
  await acceptCall(ann);
  await assertMediaFlows(ann, "ann receives bo over TLS signaling");
  await assertMediaFlows(bo, "bo receives ann over TLS signaling");
  await bo.click("#hangup-button");
  await assertCallEnded(ann, "ann");
  await assertCallEnded(bo, "bo");
  // A browser installs no service worker from an origin whose certificate it does not
  // trust (the test only ignores the error for the page), and says so: that one is
  // expected here; the app works without its worker.
  for (const page of [ann, bo]) {
    page.problems = page.problems.filter((p) => p !== "console: An SSL certificate error occurred when fetching the script.");
  }
  assertNoProblems(ann, bo);
});
