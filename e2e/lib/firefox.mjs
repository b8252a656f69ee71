// Debian's Firefox ESR, driven over WebDriver BiDi by puppeteer-core: a second browser
// engine calling through duet's UI. Prefs from ../shared/notes/browser-e2e.md: fake
// media, permissions granted (without them Firefox gathers no candidate on lo), ICE on
// loopback, nothing that calls home.

import puppeteer from "puppeteer-core";
import { RECORD_PEER_CONNECTIONS } from "./harness.mjs";

export const FIREFOX = process.env.FIREFOX ?? "/usr/bin/firefox-esr";

/** `prefs`: more of Firefox's preferences (a push server, say); `env`: more of its
 *  environment (a session D-Bus with a notification service, say). */
export async function launchFirefox(prefs = {}, env = null) {
  return puppeteer.launch({
    browser: "firefox",
    executablePath: FIREFOX,
    headless: true,
    env: env ? { ...process.env, ...env } : undefined,
    timeout: 60_000,
    extraPrefsFirefox: {
      "media.navigator.streams.fake": true,
      "media.navigator.permission.disabled": true,
      "permissions.default.camera": 1,
      "permissions.default.microphone": 1,
      "media.peerconnection.ice.loopback": true,
      "media.autoplay.default": 0,
      "media.autoplay.blocking_policy": 0,
      "app.update.enabled": false,
      "browser.shell.checkDefaultBrowser": false,
      "datareporting.policy.dataSubmissionEnabled": false,
      "toolkit.telemetry.enabled": false,
      "network.captive-portal-service.enabled": false,
      "network.connectivity-service.enabled": false,
      "browser.safebrowsing.malware.enabled": false,
      "browser.safebrowsing.phishing.enabled": false,
      "extensions.update.enabled": false,
      ...prefs,
    },
  });
}

/** Prefs that point Firefox's push at `serverURL` (a local Mozilla push protocol server). */
export function pushPrefs(serverURL) {
  return {
    "dom.push.connection.enabled": true,
    "dom.push.serverURL": serverURL,
    "dom.push.testing.allowInsecureServerURL": true,
    "permissions.default.desktop-notification": 1,
  };
}

/**
 * Firefox's fake camera is one flat colour: the camera becomes a canvas with a moving
 * square, so a test can see that the picture moves (the microphone stays Firefox's own).
 */
const MOVING_CAMERA = () => {
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    if (!constraints?.video) return stream;
    const canvas = document.createElement("canvas");
    canvas.width = 320;
    canvas.height = 240;
    const ctx = canvas.getContext("2d");
    let t = 0;
    setInterval(() => {
      t += 1;
      ctx.fillStyle = "#203040";
      ctx.fillRect(0, 0, 320, 240);
      ctx.fillStyle = "#f0c020";
      ctx.fillRect((t * 7) % 280, (t * 3) % 200, 40, 40);
    }, 33);
    const video = canvas.captureStream(30).getVideoTracks()[0];
    for (const track of stream.getVideoTracks()) {
      stream.removeTrack(track);
      track.stop();
    }
    stream.addTrack(video);
    return stream;
  };
};

/**
 * A Firefox page in a context of its own, recording its peer connections like
 * `openPage`, with console errors and page errors collected in `page.problems`.
 */
export async function openFirefoxPage(browser, url, { turnTransport = null } = {}) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.problems = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") page.problems.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => page.problems.push(`pageerror: ${err.message}`));
  await page.evaluateOnNewDocument(RECORD_PEER_CONNECTIONS, turnTransport);
  await page.evaluateOnNewDocument(MOVING_CAMERA);
  await page.goto(url);
  return page;
}

/** Signs in through the UI and waits until the server confirmed it. */
export async function firefoxSignIn(page, name) {
  await page.waitForSelector("#login:not([disabled])");
  await page.type("#name", name);
  await page.click("#login");
  await page.waitForFunction(() => /Signed in as/.test(document.getElementById("whoami")?.textContent ?? ""));
}

/** Clicks the `<li>` whose whole text is `name` in the user list (`voice`: its voice
 *  call button). */
export async function firefoxCall(page, name, { voice = false } = {}) {
  await page.waitForFunction(
    (n) => [...document.querySelectorAll("#userlistbox li")].some((li) => li.textContent === n),
    {},
    name,
  );
  await page.evaluate(
    (n, voice) => {
      const li = [...document.querySelectorAll("#userlistbox li")].find((li) => li.textContent === n);
      (voice ? li.querySelector(".call-button.voice") : li).click();
    },
    name,
    voice,
  );
}

/** Waits for the incoming call and clicks Accept. */
export async function firefoxAccept(page) {
  await page.waitForSelector("#accept-button", { visible: true });
  await page.click("#accept-button");
}
