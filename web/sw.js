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
// device's language: the worker has no page to ask.

const WORDS = {
  en: { test: "A test ring: this device rings for your calls.", other: "Something happened in duet." },
  ko: { test: "테스트 알림: 이 기기에서 전화가 울립니다.", other: "duet에 새 소식이 있습니다." },
};
const words = WORDS[(self.navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en"];

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data?.json() ?? {};
  } catch {
    // not ours to read: shown as "something happened"
  }
  const body = data.type === "test" ? words.test : words.other;
  const tag = data.type === "test" ? "duet-test" : "duet";
  event.waitUntil(self.registration.showNotification("duet", { body, tag, icon: "/icons/icon-192.png" }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openDuet("/"));
});

/** Focuses an open duet page, or opens one at `path`. */
async function openDuet(path) {
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = pages.find((page) => new URL(page.url).origin === self.location.origin);
  if (open) return open.focus();
  return self.clients.openWindow(path);
}
