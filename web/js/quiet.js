// Do not disturb: calls ring nowhere for an hour, until tomorrow morning or until turned
// off, and calls from guests can be silenced alone. An account's setting is the server's,
// one for all its devices (each is told when one changes it); a guest's is this tab's,
// sent again after a fresh sign-in. See "quiet" in docs/protocol.md.

import { language, onLanguageChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

/** "Tomorrow morning" is the next 08:00 on this device's clock. */
const MORNING_HOUR = 8;

const quiet = { send: null, on: false, until: null, guests: false, timer: null, wired: false };

/** Shows the controls; `send(msg)` goes to the server. */
export function start(send, { resend = false } = {}) {
  quiet.send = send;
  if (!quiet.wired) wire();
  $("quiet").hidden = false;
  if (resend && (quiet.on || quiet.guests)) sendSetting(secondsLeft());
}

/** The server says what the setting is now (`for`: seconds left). */
export function heard(msg) {
  quiet.on = msg.on === true;
  quiet.until = quiet.on && Number.isFinite(msg.for) ? Date.now() + msg.for * 1000 : null;
  quiet.guests = msg.guests === true;
  show();
}

function wire() {
  quiet.wired = true;
  $("quiet-select").addEventListener("change", () => {
    const choice = $("quiet-select").value;
    if (choice === "until") return;
    quiet.on = choice !== "off";
    const seconds = { hour: 3600, morning: untilMorning(new Date()) }[choice] ?? null;
    quiet.until = seconds ? Date.now() + seconds * 1000 : null;
    sendSetting(seconds);
    show();
  });
  $("quiet-guests").addEventListener("change", () => {
    quiet.guests = $("quiet-guests").checked;
    sendSetting(secondsLeft());
    show();
  });
  onLanguageChange(show);
}

function sendSetting(seconds) {
  const msg = { type: "quiet", on: quiet.on, guests: quiet.guests };
  if (quiet.on && seconds) msg.for = seconds;
  quiet.send?.(msg);
}

function secondsLeft() {
  return quiet.until ? Math.max(1, Math.ceil((quiet.until - Date.now()) / 1000)) : null;
}

/** Seconds from `now` to the next 08:00. */
export function untilMorning(now) {
  const morning = new Date(now);
  morning.setHours(MORNING_HOUR, 0, 0, 0);
  if (morning <= now) morning.setDate(morning.getDate() + 1);
  return Math.round((morning - now) / 1000);
}

/** The controls and the line under them, as the setting stands. */
function show() {
  clearTimeout(quiet.timer);
  const select = $("quiet-select");
  const until = $("quiet-until-option");
  until.hidden = !quiet.until;
  if (quiet.until) {
    // To the nearest minute: "until 8:00", not the 7:59 a second's rounding would say.
    const minute = new Date(Math.round(quiet.until / 60_000) * 60_000);
    const time = minute.toLocaleTimeString(language(), { hour: "numeric", minute: "2-digit" });
    until.textContent = t("quiet-until", { time });
    // Off again by itself when the time comes (the server reads it as off by then too).
    quiet.timer = setTimeout(() => heard({ on: false, guests: quiet.guests }), quiet.until - Date.now());
  }
  select.value = !quiet.on ? "off" : quiet.until ? "until" : "on";
  $("quiet-guests").checked = quiet.guests;
  const status = $("quiet-status");
  status.hidden = !quiet.on && !quiet.guests;
  status.textContent = quiet.on ? t("quiet-status-on") : quiet.guests ? t("quiet-status-guests") : "";
  document.body.dataset.quiet = String(quiet.on);
}
