// Makes docs/screenshot.png: a call in progress, seen by the caller.
//   unshare --net -- sh -c 'ip link set lo up; node tools/screenshot.mjs'
import { acceptCall, launchBrowser, openPage, signIn, startDuet, userItem } from "../lib/harness.mjs";
import { assertMediaFlows } from "../lib/assertions.mjs";

const duet = await startDuet();
const browser = await launchBrowser();
try {
  const ann = await openPage(browser, duet.url);
  await ann.setViewportSize({ width: 1280, height: 760 });
  const bo = await openPage(browser, duet.url);
  const cy = await openPage(browser, duet.url);
  await signIn(ann, "Ann");
  await signIn(bo, "Bo");
  await signIn(cy, "Cy");
  await bo.fill("#text", "Calling you now!");
  await bo.click("#send");
  await userItem(bo, "Ann").click();
  await acceptCall(ann);
  await assertMediaFlows(ann, "Ann receives Bo");
  await ann.fill("#text", "I can see you!");
  await ann.click("#send");
  await ann.waitForTimeout(500);
  await ann.screenshot({ path: new URL("../../docs/screenshot.png", import.meta.url).pathname });
} finally {
  await browser.close();
  await duet.stop();
}
