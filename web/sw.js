// duet's service worker: the app shell kept for speed and for the offline page, and
// (for account holders who asked for it) calls that ring while duet is closed.
//
// The server puts `self.DUET = {version, shell}` in front of this file: `shell` is the
// list of embedded files to keep, `version` a hash of all of them, which names the cache,
// so an upgraded server never serves old JavaScript from here. A new worker takes over
// at once, but a page keeps the code it loaded: the upgrade shows on the next load,
// never in the middle of a call.
//
//   navigation ──► network ──(unreachable)──► offline.html (in the page's language; it
//                                               retries by itself)
//   a shell file ──► this version's cache ──(missing)──► network
//   /api/..., /ws and anything else ──► not touched

const { version, shell } = self.DUET ?? { version: "dev", shell: [] };
const CACHE = `duet-${version}`;
const OFFLINE = "/offline.html";

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(shell))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith("duet-") && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith("/api/") || url.pathname === "/ws") return;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(() => caches.match(OFFLINE, { cacheName: CACHE })));
    return;
  }
  if (shell.includes(url.pathname)) {
    event.respondWith(caches.match(request, { cacheName: CACHE }).then((hit) => hit ?? fetch(request)));
  }
});

// ---- pushes (an account holder's device rung while duet is closed) -------------------
//
// Every push shows a notification (browsers require it of `userVisibleOnly`), in the
// device's language (the worker has no page to ask), except a call while a duet page is
// in view (the page rings itself) and a call answered or declined (the ringing
// notification just goes). A call's notifications share the tag `call-<id>`, so the
// next replaces the last.
//
//   {type: call, call, from, verified, voice, room} ──► "Ann ✓ is calling" [Accept] [Decline]
//   {type: call-ended, call, from, reason} ──► closed; missed or cancelled: "Missed call from Ann"
//   Accept (or the notification) ──► the duet page, focused or opened, picks the call up
//   Decline ──► POST /api/calls/decline, nothing opened

const WORDS = {
  en: {
    test: "A test ring: this device rings for your calls.",
    other: "Something happened in duet.",
    calling: "{name} is calling",
    voice: "Voice call from {name}",
    missed: "Missed call from {name}",
    answer: "Tap to answer in duet.",
    accept: "Accept",
    decline: "Decline",
  },
  ko: {
    test: "테스트 알림: 이 기기에서 전화가 울립니다.",
    other: "duet에 새 소식이 있습니다.",
    calling: "{name} 님이 전화를 걸고 있습니다",
    voice: "{name} 님의 음성 통화",
    missed: "{name} 님의 부재중 전화",
    answer: "duet에서 받으려면 누르세요.",
    accept: "받기",
    decline: "거절",
  },
};
const words = WORDS[(self.navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en"];
const ICON = "/icons/icon-192.png";
const MISSED = new Set(["missed", "cancelled", "disconnected", "busy", "unavailable"]);

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data?.json() ?? {};
  } catch {
    // not ours to read: shown as "something happened"
  }
  event.waitUntil(shown(data).then((notification) => notification !== null && told(data.type)));
});

/** Tells duet's open pages a notification of `kind` is up. */
async function told(kind) {
  for (const page of await self.clients.matchAll({ type: "window" })) page.postMessage({ type: "notification-shown", kind });
}

async function shown(data) {
  const show = (title, options) => self.registration.showNotification(title, { icon: ICON, ...options });
  if (data.type === "test") return show("duet", { body: words.test, tag: "duet-test" });
  if (data.type === "call") {
    if (await pageInView()) return null;
    const who = data.verified ? `${data.from} ✓` : data.from;
    return show((data.voice ? words.voice : words.calling).replace("{name}", who), {
      body: words.answer,
      tag: `call-${data.call}`,
      renotify: true,
      requireInteraction: true,
      actions: [
        { action: "accept", title: words.accept },
        { action: "decline", title: words.decline },
      ],
      data,
    });
  }
  if (data.type === "call-ended") {
    const tag = `call-${data.call}`;
    for (const open of await self.registration.getNotifications({ tag })) open.close();
    if (!MISSED.has(data.reason)) return null;
    return show(words.missed.replace("{name}", data.from), { tag, data: { type: "missed", from: data.from } });
  }
  return show("duet", { body: words.other, tag: "duet" });
}

async function pageInView() {
  const pages = await self.clients.matchAll({ type: "window" });
  return pages.some((page) => page.visibilityState === "visible");
}

self.addEventListener("notificationclick", (event) => {
  const data = event.notification.data ?? {};
  event.notification.close();
  if (data.type === "call" && event.action === "decline") {
    event.waitUntil(
      fetch("/api/calls/decline", {
        method: "POST",
        credentials: "include",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ call: data.call }),
      }),
    );
    return;
  }
  if (data.type === "call") {
    const room = data.room ? `/r/${encodeURIComponent(data.room)}` : "/";
    event.waitUntil(openDuet(`${room}?accept=${data.call}`, { type: "accept", call: data.call }));
    return;
  }
  event.waitUntil(openDuet("/"));
});

/** Focuses an open duet page (telling it `message`), or opens one at `path`. */
async function openDuet(path, message) {
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = pages.find((page) => new URL(page.url).origin === self.location.origin);
  if (!open) return self.clients.openWindow(path);
  if (message) open.postMessage(message);
  return open.focus();
}
