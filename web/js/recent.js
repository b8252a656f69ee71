// Recent calls. An account holder's are kept by the server (GET /api/calls, see
// docs/protocol.md); a guest's only in this browser (localStorage), as the page saw them.
// Missed calls not yet seen are counted in the heading, the title and the installed app's
// icon, and count as seen once the page has been in view a moment.

import { language, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

/** How long the page is in view before its missed calls count as seen. */
const SEEN_AFTER_MS = 1500;
/** A call's row is written just after it ends: read again this much later. */
const WRITTEN_AFTER_MS = 400;

/** Where a guest's calls are kept, and how many. */
const LOCAL_KEY = "duet.recent";
const LOCAL_MOST = 200;

const recent = { on: false, local: false, calls: [], unseen: 0, onCall: null, wired: false, seenTimer: null };

/** Shows the Recent list (`local`: a guest's, kept in this browser); `onCall(name)`
 *  calls someone back. */
export function start(onCall, { local = false } = {}) {
  recent.onCall = onCall;
  if (!recent.wired) wire();
  if (recent.on && recent.local === local) return;
  recent.on = true;
  recent.local = local;
  $("recent").hidden = false;
  $("recent-local").hidden = !local;
  refresh();
}

/** A call the page saw end: kept here for a guest (the server keeps an account's). */
export function note({ peer, direction, at, outcome, duration = 0, voice = false }) {
  if (!recent.on || !recent.local) return;
  const calls = localCalls();
  const id = (calls[0]?.id ?? 0) + 1;
  const seen = direction === "out" || outcome !== "missed";
  calls.unshift({ id, peer, peerVerified: false, direction, at: at ?? Date.now(), outcome, duration, seen, voice });
  saveLocal(calls.slice(0, LOCAL_MOST));
  refresh();
}

function localCalls() {
  try {
    const calls = JSON.parse(localStorage.getItem(LOCAL_KEY) ?? "[]");
    return Array.isArray(calls) ? calls : [];
  } catch {
    return [];
  }
}

function saveLocal(calls) {
  try {
    localStorage.setItem(LOCAL_KEY, JSON.stringify(calls));
  } catch (err) {
    console.warn("could not keep recent calls", err);
  }
}

/** The list and its count: this browser's, or the server's. */
async function read() {
  if (recent.local) {
    const calls = localCalls();
    return { calls, unseen: calls.filter((c) => !c.seen).length };
  }
  const response = await fetch("/api/calls", { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(String(response.status));
  return response.json();
}

/** Every missed call seen, here or on the server. */
async function markSeen() {
  if (recent.local) {
    saveLocal(localCalls().map((c) => ({ ...c, seen: true })));
    return true;
  }
  const response = await fetch("/api/calls/seen", { method: "POST" }).catch(() => null);
  return Boolean(response?.ok);
}

/** Signed out (or a guest): no list, no counts. */
export function stop() {
  recent.on = false;
  recent.calls = [];
  $("recent").hidden = true;
  showUnseen(0);
}

/** Reads the list again (`soon`: once the call that just ended has been written). */
export async function refresh({ soon = false } = {}) {
  if (!recent.on) return;
  if (soon) {
    // Only the server writes a call down after it ended; a guest's list is noted at once.
    if (!recent.local) setTimeout(() => refresh(), WRITTEN_AFTER_MS);
    return;
  }
  try {
    const answer = await read();
    // A server that keeps no history: nothing to show an account holder.
    $("recent").hidden = !recent.local && answer.keptDays === 0;
    recent.calls = Array.isArray(answer.calls) ? answer.calls : [];
    recent.unseen = Number(answer.unseen) || 0;
    render();
    seeWhenInView();
  } catch (err) {
    console.warn("could not read recent calls", err);
    $("recent-empty").textContent = t("recent-failed");
    $("recent-empty").hidden = false;
  }
}

/** Written again in the page's language. */
export function redraw() {
  if (recent.on) render();
}

function wire() {
  recent.wired = true;
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });
  $("recent-clear").addEventListener("click", async () => {
    if (!window.confirm(t("recent-clear-confirm"))) return;
    if (recent.local) saveLocal([]);
    else await fetch("/api/calls", { method: "DELETE" }).catch(() => null);
    refresh();
  });
}

function render() {
  $("recent-list").replaceChildren(...recent.calls.map(row));
  $("recent-empty").textContent = t("recent-empty");
  $("recent-empty").hidden = recent.calls.length > 0;
  $("recent-clear").hidden = recent.calls.length === 0;
  showUnseen(recent.unseen);
}

/** One call: who, how it went and when, and Call back. */
function row(call) {
  const li = document.createElement("li");
  const missed = call.direction === "in" && !["answered", "declined", "failed"].includes(call.outcome);
  li.dataset.missed = String(missed);
  li.dataset.unseen = String(!call.seen);
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = call.peer;
  const how = document.createElement("span");
  how.className = "how";
  const what = t(`recent-${call.direction === "out" ? "out" : "in"}-${call.outcome}`, {
    duration: duration(Number(call.duration) || 0),
  });
  const kind = call.voice === true ? ` · ${t("recent-voice")}` : "";
  how.textContent = `${what}${kind} · ${when(Number(call.at) || 0)}`;
  const back = document.createElement("button");
  back.type = "button";
  back.className = "secondary small";
  back.textContent = t("recent-call-back");
  back.setAttribute("aria-label", t("recent-call-back-label", { name: call.peer }));
  back.addEventListener("click", () => recent.onCall?.(call.peer, { voice: call.voice === true }));
  if (call.peerVerified) {
    // As in the user list: a mark drawn from an attribute, so the name stays the text.
    const mark = document.createElement("span");
    mark.className = "mark";
    mark.dataset.text = t("verified");
    who.append(mark);
  }
  li.append(who, how, back);
  return li;
}

/** 0:42, 3:05, 1:02:09 */
function duration(seconds) {
  const two = (n) => String(n).padStart(2, "0");
  const [h, m, s] = [Math.floor(seconds / 3600), Math.floor((seconds % 3600) / 60), seconds % 60];
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

/** The time today, else the date and time, in the page's language. */
function when(ms) {
  const date = new Date(ms);
  const today = date.toDateString() === new Date().toDateString();
  const options = today ? { timeStyle: "short" } : { dateStyle: "medium", timeStyle: "short" };
  return new Intl.DateTimeFormat(language(), options).format(date);
}

/** The count of unseen missed calls: in the heading, the title and on the app's icon. */
function showUnseen(count) {
  $("recent-unseen").hidden = count === 0;
  $("recent-unseen").textContent = t("recent-unseen", { count });
  const ringing = !$("incoming")?.hidden;
  if (!ringing) document.title = count > 0 ? t("title-missed", { count, title: t("title") }) : t("title");
  if (count > 0) navigator.setAppBadge?.(count)?.catch?.(() => {});
  else navigator.clearAppBadge?.()?.catch?.(() => {});
}

/** Missed calls count as seen once the page has been in view a moment. */
function seeWhenInView() {
  clearTimeout(recent.seenTimer);
  if (recent.unseen === 0 || document.visibilityState !== "visible") return;
  recent.seenTimer = setTimeout(async () => {
    if (document.visibilityState !== "visible" || !recent.on) return;
    if (!(await markSeen())) return;
    recent.unseen = 0;
    showUnseen(0);
  }, SEEN_AFTER_MS);
}
