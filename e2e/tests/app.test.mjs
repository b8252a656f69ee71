// duet as an app, in Chromium. The manifest makes it installable (CDP
// Page.getInstallabilityErrors is empty); the service worker controls the page and keeps
// this build's shell in a cache named by its version, never an API answer; offline, a
// reload shows the offline page in the person's language (English, Korean), which finds
// duet again by itself once it is back; "Install duet" appears when the browser offers
// installation and asks it; an iPhone is told how to add duet to its Home Screen.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { eventually, launchBrowser, launchProfile, signIn, startDuet } from "../lib/harness.mjs";
import { violations } from "../lib/axe.mjs";

const env = { duet: null, browser: null };

before(async () => {
  env.duet = await startDuet([]);
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await env.duet?.stop();
});

/** A page of a fresh profile, once the service worker controls it. */
async function controlledPage(profile) {
  const page = profile.pages()[0] ?? (await profile.newPage());
  await page.goto(env.duet.url);
  await eventually("the service worker to control the page", () =>
    page.evaluate(() => navigator.serviceWorker.controller?.scriptURL ?? null),
  );
  return page;
}

test("the manifest is installable and the worker keeps this build's shell, never the API", async () => {
  const profile = await launchProfile();
  try {
    const page = await controlledPage(profile);
    const cdp = await profile.newCDPSession(page);
    const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
    assert.deepEqual(installabilityErrors, [], "Chromium would install duet");
    await signIn(page, "app-ann");
    const worker = await (await fetch(new URL("/sw.js", env.duet.url))).text();
    const version = worker.match(/version: "([0-9a-f]{12})"/)?.[1];
    assert.ok(version, "the worker is told its version");
    const kept = await page.evaluate(async () => {
      const names = await caches.keys();
      const urls = [];
      for (const name of names) {
        for (const request of await (await caches.open(name)).keys()) urls.push(new URL(request.url).pathname);
      }
      return { names, urls };
    });
    assert.deepEqual(kept.names, [`duet-${version}`], "one cache, named by this build");
    for (const path of ["/js/main.js", "/offline.html", "/style.css", "/icons/icon-192.png"]) {
      assert.ok(kept.urls.includes(path), `${path} is kept`);
    }
    assert.ok(!kept.urls.some((p) => p.startsWith("/api/") || p === "/" || p === "/ws"), "no page, API answer or socket");
  } finally {
    await profile.close();
  }
});

for (const [locale, title, text] of [
  ["en-US", "duet cannot be reached", "This device is offline"],
  ["ko-KR", "duet에 연결할 수 없습니다", "이 기기가 오프라인이거나"],
]) {
  test(`offline, a reload shows the offline page (${locale}), which goes back to duet by itself`, async () => {
    const profile = await launchProfile({ locale });
    try {
      const page = await controlledPage(profile);
      await profile.setOffline(true);
      await page.reload();
      await page.locator("h1", { hasText: title }).waitFor();
      await page.locator("main", { hasText: text }).waitFor();
      assert.deepEqual(await violations(page), [], "the offline page");
      await profile.setOffline(false);
      // It tries again every few seconds and reloads once duet answers.
      await page.locator("#welcome").waitFor({ timeout: 15_000 });
    } finally {
      await profile.close();
    }
  });
}

test("'Install duet' appears when the browser offers installation, and asks it", async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  await page.goto(env.duet.url);
  assert.equal(await page.locator("#install-button").isVisible(), false, "not before the browser offers");
  await page.evaluate(() => {
    const offer = new Event("beforeinstallprompt", { cancelable: true });
    offer.prompt = async () => {
      window.__asked = true;
      return { outcome: "accepted" };
    };
    dispatchEvent(offer);
  });
  await page.getByRole("button", { name: "Install duet" }).click();
  assert.equal(await page.evaluate(() => window.__asked), true, "the browser's own dialog was asked for");
  await page.locator("#install-button").waitFor({ state: "hidden" });
  await context.close();
});

test("on an iPhone, where no browser offers installation, a note says how and why", async () => {
  const iphone =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
  const context = await env.browser.newContext({ userAgent: iphone, viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await page.goto(env.duet.url);
  await signIn(page, "iphone-ann");
  await page.locator("#ios-install", { hasText: "tap Share, then Add to Home Screen" }).waitFor();
  await context.close();
});
