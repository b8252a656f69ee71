// "Ring this device when duet is closed", for account holders: this browser subscribes
// with its push service (PushManager, duet's VAPID key) and registers the subscription
// with duet (POST /api/push/subscriptions); the list shows the account's devices, each
// removable, and a test ring tells whether they ring. The service worker (sw.js) shows
// what arrives. See /api/push in docs/protocol.md.

import { language, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

/** How long subscribing may take: a browser without its push service never settles. */
const SUBSCRIBE_WITHIN_MS = 15_000;

const push = { key: null, devices: [], wired: false, endpoint: null };

/** Shows the section to an account holder whose browser and server can push. */
export async function start() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) return;
  const answer = await fetch("/api/push", { credentials: "same-origin" }).catch(() => null);
  if (!answer?.ok) return; // a guest, or a server without push
  const { publicKey, devices } = await answer.json();
  push.key = publicKey;
  if (!push.wired) wire();
  const registration = await navigator.serviceWorker.ready;
  push.endpoint = (await registration.pushManager.getSubscription())?.endpoint ?? null;
  show(devices);
  $("push").hidden = false;
}

function wire() {
  push.wired = true;
  $("push-on").addEventListener("click", () => turnOn().catch((err) => say(t("push-failed", { why: err.message }), "error")));
  $("push-off").addEventListener("click", () => turnOff(push.endpoint));
  $("push-test").addEventListener("click", testRing);
}

/** This device rings from now on: permission (this click), subscription, registration. */
async function turnOn() {
  if ((await Notification.requestPermission()) !== "granted") {
    say(t("push-permission"), "error");
    return;
  }
  const registration = await navigator.serviceWorker.ready;
  const subscribing = registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: push.key });
  const late = new Promise((_, reject) => setTimeout(() => reject(new Error(t("push-no-service"))), SUBSCRIBE_WITHIN_MS));
  const subscription = await Promise.race([subscribing, late]);
  const answer = await fetch("/api/push/subscriptions", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ subscription: subscription.toJSON(), device: deviceName() }),
  });
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.message ?? answer.status);
  push.endpoint = subscription.endpoint;
  show(body.devices);
  say(t("push-on-done"), "ok");
}

/** Forgets the device at `endpoint` (this one: its subscription is dropped too). */
async function turnOff(endpoint) {
  if (!endpoint) return;
  if (endpoint === push.endpoint) {
    const registration = await navigator.serviceWorker.ready;
    await (await registration.pushManager.getSubscription())?.unsubscribe();
    push.endpoint = null;
  }
  await fetch("/api/push/subscriptions", {
    method: "DELETE",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ endpoint }),
  });
  const answer = await fetch("/api/push", { credentials: "same-origin" });
  if (answer.ok) show((await answer.json()).devices);
}

async function testRing() {
  say(t("push-testing"));
  const answer = await fetch("/api/push/test", { method: "POST", credentials: "same-origin" });
  if (!answer.ok) {
    say(t("push-failed", { why: answer.status }), "error");
    return;
  }
  const { delivered, gone, failed } = await answer.json();
  say(t("push-tested", { delivered, missed: gone + failed }), delivered > 0 ? "ok" : "error");
}

/** The section as it stands: this device on or off, and the account's devices. */
function show(devices) {
  push.devices = devices;
  const here = devices.some((d) => d.endpoint === push.endpoint);
  $("push-on").hidden = here;
  $("push-off").hidden = !here;
  $("push-state").textContent = t(here ? "push-here-on" : "push-here-off");
  $("push-test").hidden = devices.length === 0;
  const items = devices.map((d) => {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = d.endpoint === push.endpoint ? t("push-this-device", { device: d.device }) : d.device;
    const used = document.createElement("span");
    used.className = "hint";
    const when = new Date(d.used).toLocaleString(language(), { dateStyle: "medium", timeStyle: "short" });
    used.textContent = t("push-last-used", { when });
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary small";
    remove.textContent = t("push-remove");
    remove.setAttribute("aria-label", t("push-remove-label", { device: d.device }));
    remove.addEventListener("click", () => turnOff(d.endpoint));
    li.append(name, used, remove);
    return li;
  });
  $("push-devices").replaceChildren(...items);
}

function say(text, kind = "info") {
  const line = $("push-status");
  line.textContent = text;
  line.dataset.kind = kind;
  line.hidden = false;
}

/** "Chrome on Android", "Firefox on Linux"…: what the device list calls this browser. */
export function deviceName(ua = navigator.userAgent) {
  const browser = /Edg\//.test(ua)
    ? "Edge"
    : /Firefox\//.test(ua)
      ? "Firefox"
      : /Chrome\/|Chromium\//.test(ua)
        ? "Chrome"
        : /Safari\//.test(ua)
          ? "Safari"
          : "A browser";
  const system = /iPhone/.test(ua)
    ? "iPhone"
    : /iPad/.test(ua)
      ? "iPad"
      : /Android/.test(ua)
        ? "Android"
        : /Windows/.test(ua)
          ? "Windows"
          : /Mac OS X|Macintosh/.test(ua)
            ? "Mac"
            : /Linux/.test(ua)
              ? "Linux"
              : null;
  return system ? t("push-device-name", { browser, system }) : browser;
}
