// The page the service worker shows when duet cannot be reached: in the person's
// language, trying again by itself every few seconds (sooner when the device says it is
// back online), and back to duet as soon as the server answers.

import { t, translate } from "./i18n.js";

const EVERY_MS = 5_000;
const $ = (id) => document.getElementById(id);

translate();

let timer = null;

async function tryAgain() {
  clearTimeout(timer);
  $("offline-status").textContent = t("offline-checking");
  try {
    const response = await fetch("/healthz", { cache: "no-store" });
    if (response.ok) {
      location.reload();
      return;
    }
  } catch {
    // still unreachable
  }
  $("offline-status").textContent = t("offline-retrying");
  timer = setTimeout(tryAgain, EVERY_MS);
}

$("offline-retry").addEventListener("click", tryAgain);
addEventListener("online", tryAgain);
timer = setTimeout(tryAgain, EVERY_MS);
