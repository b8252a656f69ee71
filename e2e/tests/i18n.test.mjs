// Korean and English: the page speaks the browser's language (or the one picked in the
// page), every visible word comes from the language's table, and a call in Korean works.

import { test } from "node:test";
import assert from "node:assert/strict";
import en from "../../web/js/i18n/en.js";
import ko from "../../web/js/i18n/ko.js";
import { acceptCall, openPage, signIn, useDuetAndBrowser, userItem } from "../lib/harness.mjs";
import { assertCallEnded, assertMediaFlows, closeCleanly } from "../lib/assertions.mjs";

const env = useDuetAndBrowser();

const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test("the Korean and English tables have the same strings with the same placeholders", () => {
  assert.deepEqual(Object.keys(ko).sort(), Object.keys(en).sort());
  for (const key of Object.keys(en)) assert.deepEqual(placeholders(ko[key]), placeholders(en[key]), key);
});

/**
 * English left on a Korean page: every piece of an English string (between its
 * placeholders) that is a few letters long and not the same in Korean, found in the
 * page's visible text or its labels and placeholders.
 */
async function englishOn(page) {
  const shown = await page.evaluate(() => {
    const parts = [document.body.innerText, document.title];
    for (const element of document.querySelectorAll("*")) {
      if (element.closest("[hidden]") || element.tagName === "OPTION") continue;
      for (const attribute of ["placeholder", "aria-label", "title"]) {
        const value = element.getAttribute(attribute);
        if (value) parts.push(value);
      }
    }
    return parts.join("\n");
  });
  const left = [];
  for (const [key, english] of Object.entries(en)) {
    if (english === ko[key]) continue;
    for (const piece of english.split(/\{\w+\}/).map((p) => p.trim())) {
      if (piece.length >= 4 && /[a-z]{3}/i.test(piece) && !ko[key].includes(piece) && shown.includes(piece)) {
        left.push(`${key}: "${piece}"`);
      }
    }
  }
  return left;
}

test("a Korean browser gets the page in Korean on every screen, and a call in Korean works", async () => {
  const minji = await openPage(env.browser, env.duet.url, { locale: "ko-KR" });
  const junho = await openPage(env.browser, env.duet.url, { locale: "ko-KR" });
  assert.equal(await minji.getAttribute("html", "lang"), "ko");
  await minji.locator("#login:not([disabled])").waitFor();
  assert.deepEqual(await englishOn(minji), [], "before signing in");
  assert.equal(await minji.textContent("#people-heading"), ko["people-heading"]);
  await minji.click("#check-button");
  await minji.locator("#check-area:not([hidden])").waitFor();
  assert.deepEqual(await englishOn(minji), [], "the camera and microphone check");

  for (const [page, name] of [[minji, "민지"], [junho, "준호"]]) {
    await page.fill("#name", name);
    await page.click("#login");
    await page.locator("#whoami", { hasText: `${name}(으)로 로그인함` }).waitFor();
  }
  assert.deepEqual(await englishOn(minji), [], "signed in, with the people list");

  await userItem(minji, "준호").click();
  await junho.locator("#incoming-text", { hasText: "민지 님이 전화를 걸고 있습니다" }).waitFor();
  assert.equal(await junho.title(), "민지 님의 전화 · duet");
  assert.deepEqual(await englishOn(junho), [], "an incoming call");
  assert.deepEqual(await englishOn(minji), [], "ringing");
  await acceptCall(junho);
  await assertMediaFlows(junho, "준호 receives 민지");
  await minji.locator("#status", { hasText: "준호 님과 통화 중입니다." }).waitFor();
  await minji.locator("#call-quality", { hasText: "연결" }).waitFor();
  assert.deepEqual(await englishOn(minji), [], "in a call");
  await minji.setViewportSize({ width: 390, height: 844 });
  await minji.click("#more-button");
  assert.deepEqual(await englishOn(minji), [], "in a call on a phone, More open");

  await minji.click("#hangup-button");
  await assertCallEnded(junho, "준호");
  await junho.locator("#status", { hasText: "민지 님이 통화를 끝냈습니다." }).waitFor();
  await junho.locator("#ended-text", { hasText: "민지 님이 통화를 끝냈습니다." }).waitFor();
  assert.deepEqual(await englishOn(junho), [], "the call ended");
  await junho.setViewportSize({ width: 390, height: 844 });
  await junho.click("#menu-button");
  await junho.click("#home-chat-button");
  assert.deepEqual(await englishOn(junho), [], "home on a phone, settings and chat open");
  await closeCleanly(minji, junho);
});

test("the language switch changes the page at once and is remembered", async () => {
  const page = await openPage(env.browser, env.duet.url, { locale: "en-US" });
  await signIn(page, "ann-switch");
  assert.equal(await page.textContent("#people-heading"), en["people-heading"]);
  await page.selectOption("#language", "ko");
  assert.equal(await page.textContent("#people-heading"), ko["people-heading"]);
  assert.equal(await page.textContent("#whoami"), "ann-switch(으)로 로그인함", "what code wrote is rewritten");
  assert.equal(await page.getAttribute("html", "lang"), "ko");
  await page.reload();
  await page.locator("#login:not([disabled])").waitFor();
  assert.equal(await page.textContent("#people-heading"), ko["people-heading"], "the choice is kept");
  await page.selectOption("#language", "en");
  assert.equal(await page.textContent("#people-heading"), en["people-heading"]);
  await closeCleanly(page);
});
