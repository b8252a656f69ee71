// What a person sees around a call: signing in, the user list, chat, refusals.

import { test } from "node:test";
import assert from "node:assert/strict";
import { openPage, signIn, userItem, useDuetAndBrowser } from "../lib/harness.mjs";
import { assertNoProblems } from "../lib/assertions.mjs";

const env = useDuetAndBrowser();

test("the user list shows everyone else by name, and not yourself", async () => {
  const ann = await openPage(env.browser, env.duet.url);
  const bo = await openPage(env.browser, env.duet.url);
  await signIn(ann, "ann");
  await signIn(bo, "bo <b>");
  await userItem(ann, "bo <b>").waitFor();
  assert.deepEqual(await ann.locator("#userlistbox li").allTextContents(), ["bo <b>", "echo"]);
  assert.deepEqual(await bo.locator("#userlistbox li").allTextContents(), ["ann", "echo"]);
  assert.equal(await ann.locator("#userlistbox b").count(), 0, "names are text, never markup");
  assertNoProblems(ann, bo);
  await ann.context().close();
  await bo.context().close();
});

test("a taken name is replaced and the person is told", async () => {
  const first = await openPage(env.browser, env.duet.url);
  const second = await openPage(env.browser, env.duet.url);
  await signIn(first, "sam");
  await second.locator("#login:not([disabled])").waitFor();
  await second.fill("#name", "sam");
  await second.click("#login");
  await second.locator("#whoami", { hasText: "Signed in as sam2" }).waitFor();
  assert.match(await second.textContent("#status"), /taken.*sam2/);
  assertNoProblems(first, second);
  await first.context().close();
  await second.context().close();
});

test("an unusable name is refused with a reason in the page", async () => {
  const page = await openPage(env.browser, env.duet.url);
  await page.locator("#login:not([disabled])").waitFor();
  // The input stops at 32 characters; a modified page (or another client) does not.
  await page.evaluate(() => document.getElementById("name").removeAttribute("maxlength"));
  await page.fill("#name", "y".repeat(40));
  await page.click("#login");
  await page.locator("#status[data-kind=error]").waitFor();
  assert.match(await page.textContent("#status"), /longer than 32/);
  assert.equal(await page.isHidden("#whoami"), true);
  assertNoProblems(page);
  await page.context().close();
});

test("chat reaches everyone as plain text with the sender's name", async () => {
  const ann = await openPage(env.browser, env.duet.url);
  const bo = await openPage(env.browser, env.duet.url);
  await signIn(ann, "chat-ann");
  await signIn(bo, "chat-bo");
  await ann.fill("#text", "<img src=x onerror=alert(1)> hello");
  await ann.click("#send");
  const line = bo.locator("#chatbox li").last();
  await line.waitFor();
  assert.match(await line.textContent(), /chat-ann.*<img src=x onerror=alert\(1\)> hello/);
  assert.equal(await bo.locator("#chatbox img").count(), 0);
  assertNoProblems(ann, bo);
  await ann.context().close();
  await bo.context().close();
});

test("the page serves a favicon and no asset is missing", async () => {
  const page = await openPage(env.browser, env.duet.url);
  const response = await page.request.get(new URL("/favicon.svg", env.duet.url).href);
  assert.equal(response.status(), 200);
  assert.match(response.headers()["content-type"], /svg/);
  assertNoProblems(page);
  await page.context().close();
});

test("a browser without WebRTC is told so and what to do, instead of a broken page", async () => {
  const context = await env.browser.newContext();
  await context.addInitScript(() => {
    delete window.RTCPeerConnection;
    delete window.webkitRTCPeerConnection;
  });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (err) => problems.push(err.message));
  page.on("console", (msg) => msg.type() === "error" && problems.push(msg.text()));
  await page.goto(env.duet.url);
  await page.locator("#unsupported-text", { hasText: "no WebRTC" }).waitFor();
  assert.match(await page.textContent("#unsupported-text"), /Firefox, Chrome, Edge or Safari/);
  assert.equal(await page.isVisible("#login"), false, "no sign-in that could not lead to a call");
  assert.equal(await page.isVisible("#received_video"), false);
  assert.deepEqual(problems, []);
  await context.close();
});

test("a Korean browser that cannot call is told so in Korean", async () => {
  const context = await env.browser.newContext({ locale: "ko-KR" });
  await context.addInitScript(() => delete window.RTCPeerConnection);
  const page = await context.newPage();
  await page.goto(env.duet.url);
  await page.locator("#unsupported-text", { hasText: "WebRTC" }).waitFor();
  assert.equal(await page.textContent("#unsupported-heading"), "이 브라우저로는 여기서 통화할 수 없습니다");
  assert.doesNotMatch(await page.evaluate(() => document.body.innerText), /browser|Open this page/i);
  assert.ok(await page.isVisible("#language"), "the language can still be switched");
  await context.close();
});
