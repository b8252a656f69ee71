// DNS rebinding: a foreign name that resolves to duet's address (Chromium's resolver
// maps evil.test to it) sends its own name in Host, and duet answers nothing but 421:
// not the page, not the API, not the WebSocket. duet's own address still works.

import { test } from "node:test";
import assert from "node:assert/strict";
import { openPage, signIn, useDuetAndBrowser } from "../lib/harness.mjs";
import { closeCleanly } from "../lib/assertions.mjs";

const env = useDuetAndBrowser([], ["--host-resolver-rules=MAP evil.test 127.0.0.1"]);

test("a page under a foreign name that resolves to duet is refused on every route", async () => {
  const port = new URL(env.duet.url).port;
  const evil = `http://evil.test:${port}`;
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const response = await page.goto(`${evil}/`);
  assert.equal(response.status(), 421, "duet's page is not served under a foreign name");
  assert.match(await page.textContent("body"), /does not answer to the name evil\.test/);
  assert.equal(await page.locator("#userlistbox").count(), 0);

  // Script running in the evil.test origin (the attacker's, after the rebinding): its
  // requests reach duet's address with Host: evil.test and a matching Origin.
  const seen = await page.evaluate(async () => {
    const api = await fetch("/api/access").then((r) => r.status, () => "failed");
    const signIn = await fetch("/api/sign-in", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ password: "guess" }),
    }).then((r) => r.status, () => "failed");
    const socket = await new Promise((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/ws`, "json");
      ws.onopen = () => resolve("open");
      ws.onerror = () => resolve("refused");
    });
    return { api, signIn, socket };
  });
  assert.deepEqual(seen, { api: 421, signIn: 421, socket: "refused" });
  await context.close();

  const own = await openPage(env.browser, env.duet.url);
  await signIn(own, "ann");
  await closeCleanly(own);
});
