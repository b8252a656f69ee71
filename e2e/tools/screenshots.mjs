// Makes the README's pictures from real calls: each screen (welcome, home, an incoming
// call, a call, its More sheet on a phone, the call ended) at phone (390x844) and
// desktop (1280x800) size, in light English and dark Korean, into docs/screens/. Korean needs a Korean font (Debian: fonts-nanum).
//   cd e2e && unshare --net -- sh -c 'ip link set lo up; node tools/screenshots.mjs'
import { mkdirSync } from "node:fs";
import { acceptCall, launchBrowser, openPage, startDuet, userItem } from "../lib/harness.mjs";
import { assertMediaFlows } from "../lib/assertions.mjs";

const out = new URL("../../docs/screens/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
const looks = [
  { scheme: "light", locale: "en-US", tag: "en", people: ["Ann", "Bo", "Cy"], chat: "Calling you now!" },
  { scheme: "dark", locale: "ko-KR", tag: "ko", people: ["민지", "준호", "서연"], chat: "지금 전화할게요!" },
];
const sizes = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 800 } };

const duet = await startDuet();
const browser = await launchBrowser();
try {
  for (const { scheme, locale, tag, people, chat } of looks) {
    for (const [size, viewport] of Object.entries(sizes)) {
      const pages = [];
      for (const _ of people) pages.push(await openPage(browser, duet.url, { locale }));
      const [me, them] = pages;
      for (const page of pages) {
        await page.setViewportSize(viewport);
        await page.emulateMedia({ colorScheme: scheme });
        await page.locator("#login:not([disabled])").waitFor();
      }
      const shot = (page, screen) => page.screenshot({ path: `${out}${screen}-${size}-${tag}-${scheme}.png` });
      await shot(me, "welcome");
      for (const [i, page] of pages.entries()) {
        await page.fill("#name", people[i]);
        await page.click("#login");
        await page.locator("#whoami:not([hidden])").waitFor();
      }
      if (await them.isVisible("#home-chat-button")) await them.click("#home-chat-button");
      await them.fill("#text", chat);
      await them.click("#send");
      await me.waitForTimeout(300);
      await shot(me, "home");
      await userItem(them, people[0]).click();
      await me.locator("#accept-button").waitFor();
      await shot(me, "incoming");
      await acceptCall(me);
      await assertMediaFlows(me, "the screenshot call");
      await me.waitForTimeout(2500);
      await me.mouse.move(10, 10); // the controls show
      await me.waitForTimeout(400); // (they fade in)
      await shot(me, "call");
      if (size === "phone") {
        await me.click("#more-button");
        await shot(me, "call-more");
        await me.click("#more-button");
      }
      await me.click("#hangup-button");
      await me.locator("#ended:not([hidden])").waitFor();
      await shot(me, "ended");
      for (const page of pages) await page.context().close();
    }
  }
} finally {
  await browser.close();
  await duet.stop();
}
