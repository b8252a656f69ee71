// Everything that touches the page. User-supplied text (names, chat) only ever goes
// through textContent, never through innerHTML.

import { t, time } from "./i18n.js";

const $ = (id) => document.getElementById(id);

export const elements = {
  loginForm: $("login-form"),
  name: $("name"),
  login: $("login"),
  whoami: $("whoami"),
  rename: $("rename-button"),
  chatButton: $("chat-button"),
  homeChat: $("home-chat-button"),
  menu: $("menu-button"),
  more: $("more-button"),
  extras: $("call-extras"),
  switchCamera: $("switch-camera-button"),
  lobbyInfo: $("lobby-info"),
  welcomeText: document.querySelector("#welcome .welcome-text"),
  fit: $("fit-button"),
  fullscreen: $("fullscreen-button"),
  pip: $("pip-button"),
  ended: $("ended"),
  endedText: $("ended-text"),
  endedAdvice: $("ended-advice"),
  callAgain: $("call-again-button"),
  testCall: $("test-call-button"),
  status: $("status"),
  users: $("userlistbox"),
  peopleHint: $("people-hint"),
  localVideo: $("local_video"),
  remoteVideo: $("received_video"),
  peerLabel: $("peer-label"),
  avatar: $("peer-avatar"),
  hangUp: $("hangup-button"),
  mute: $("mute-button"),
  share: $("share-button"),
  camera: $("camera-button"),
  remoteMuted: $("remote-muted"),
  timer: $("call-timer"),
  quality: $("call-quality"),
  remoteCameraOff: $("remote-camera-off"),
  relayOnly: $("relay-only"),
  incoming: $("incoming"),
  incomingText: $("incoming-text"),
  accept: $("accept-button"),
  decline: $("decline-button"),
  roomInfo: $("room-info"),
  roomName: $("room-name"),
  inviteLink: $("invite-link"),
  invite: $("invite-button"),
  newRoom: $("new-room-button"),
  cameraSelect: $("camera-select"),
  microphoneSelect: $("microphone-select"),
  chatbox: $("chatbox"),
  chatForm: $("chat-form"),
  text: $("text"),
  send: $("send"),
};

/** Writes `key`'s words on `button` (on its label, beside its icon), kept for a language switch. */
function setLabel(button, key) {
  const label = button.querySelector(".label") ?? button;
  label.dataset.i18n = key;
  label.textContent = t(key);
}

/**
 * Which screen the page shows: "welcome" (not signed in), "home" (the people to call)
 * or "call" (ringing someone, or talking); the layout follows it (style.css).
 */
export function setScreen(screen) {
  document.body.dataset.screen = screen;
}

/** The browser cannot call from here: say why and what to do, and nothing else. */
export function showUnsupported(key) {
  setScreen("unsupported");
  $("welcome").hidden = true;
  $("unsupported").hidden = false;
  const text = $("unsupported-text");
  text.dataset.i18n = key;
  text.textContent = t(key);
  setStatus("");
  elements.status.hidden = true;
}

/**
 * How a call ended, with what to do next: `again` calls that person again; `advice`
 * adds "check your connection" with the test call when `testCall` is offered. `null`
 * puts it away.
 */
export function showEnded(text, { advice = false, testCall = false } = {}) {
  elements.ended.hidden = text === null;
  elements.endedText.textContent = text ?? "";
  elements.endedAdvice.hidden = !advice;
  elements.testCall.hidden = !(advice && testCall);
  sayOnce();
}

/** The status line steps aside (for the eye; a screen reader still hears it) while the
 *  ended panel shows the same words. */
function sayOnce() {
  const same = !elements.ended.hidden && elements.status.textContent === elements.endedText.textContent;
  elements.status.classList.toggle("visually-hidden", same);
}

/** The other person's picture: "fill" (cropped to the window) or "fit" (all of it). */
export function toggleFit() {
  const filling = getComputedStyle(elements.remoteVideo).objectFit === "cover";
  document.body.dataset.fit = filling ? "fit" : "fill";
  showFit();
}

/** The Fit/Fill button offers what the picture is not doing now. */
export function showFit() {
  const filling = getComputedStyle(elements.remoteVideo).objectFit === "cover";
  setLabel(elements.fit, filling ? "fit" : "fill");
  elements.fit.setAttribute("aria-pressed", String(filling));
}

/** The call takes the whole screen, or gives it back. */
export async function toggleFullscreen() {
  if (document.fullscreenElement) await document.exitFullscreen();
  else await $("camera-container").requestFullscreen();
}

export function showFullscreen() {
  const full = Boolean(document.fullscreenElement);
  setLabel(elements.fullscreen, full ? "exit-full-screen" : "full-screen");
  elements.fullscreen.setAttribute("aria-pressed", String(full));
}

/** The other person in a small window of its own, over other apps. */
export async function togglePictureInPicture() {
  if (document.pictureInPictureElement) await document.exitPictureInPicture();
  else await elements.remoteVideo.requestPictureInPicture();
}

/** Opens or closes the chat panel (a panel of its own on a phone); opening it reads
 *  what was new. */
export function showChat(open) {
  document.body.dataset.chat = open ? "open" : "closed";
  for (const button of [elements.chatButton, elements.homeChat]) button.setAttribute("aria-pressed", String(open));
  if (open) {
    showUnread(0);
    elements.text.focus();
  }
}

let unread = 0;
/** How many chat lines came while the panel was closed, on both chat buttons. */
function showUnread(count) {
  unread = count;
  for (const button of [elements.chatButton, elements.homeChat]) {
    if (count) {
      button.dataset.unread = String(count);
      button.setAttribute("aria-description", t("unread", { n: count }));
    } else {
      delete button.dataset.unread;
      button.removeAttribute("aria-description");
    }
  }
}

/** Opens or closes a disclosure: `button` (aria-expanded) and body[data-`key`]. */
export function showOpen(key, button, open) {
  document.body.dataset[key] = open ? "open" : "closed";
  button.setAttribute("aria-expanded", String(open));
}

/** kind: "info" | "ok" | "error" */
export function setStatus(text, kind = "info") {
  elements.status.textContent = text;
  elements.status.dataset.kind = kind;
  sayOnce();
}

export function showSignedIn(name) {
  elements.whoami.textContent = t("signed-in-as", { name });
  elements.whoami.hidden = false;
  elements.rename.hidden = false;
  setLabel(elements.login, "rename");
  elements.text.disabled = false;
  elements.send.disabled = false;
}

export function setConnected(connected) {
  elements.login.disabled = !connected;
  elements.text.disabled = !connected || elements.whoami.hidden;
  elements.send.disabled = elements.text.disabled;
}

/**
 * One <li> per other user, its text exactly the name. Clicking, Enter or Space calls.
 * Someone in a call is marked (data-busy), and calling them answers "busy".
 * @param {string[]} users  everyone signed in
 * @param {string} me       our own name, left out
 * @param {string[]} inCall who is ringing or talking now
 * @param {string[]} services which names are the server's own (echo), not people
 * @param {string[]} verified which names signed in with an account (marked by the server)
 * @param {(name: string) => void} onCall
 */
export function renderUserList(users, me, inCall, services, verified, onCall) {
  const others = users.filter((u) => u !== me);
  const busy = new Set(inCall);
  const service = new Set(services);
  const account = new Set(verified);
  const items = others.map((name) => {
    const li = document.createElement("li");
    li.textContent = name;
    li.dataset.busy = String(busy.has(name));
    li.dataset.service = String(service.has(name));
    li.dataset.verified = String(account.has(name));
    // Marks are empty spans whose words CSS draws from data-text: the text stays the name.
    const mark = (className, text) => {
      const span = document.createElement("span");
      span.className = className;
      span.dataset.text = text;
      li.append(span);
    };
    if (account.has(name)) mark("mark", t("verified"));
    if (busy.has(name)) mark("note", t("busy-note"));
    else if (service.has(name)) mark("note", t("echo-note"));
    const who = account.has(name) ? t("verified-account-label", { name }) : name;
    // Two buttons without text (icons drawn by CSS), so the item's text stays the name:
    // a voice call (not to a service) and a video call, which a click anywhere else on
    // the person also makes.
    const button = (kind, label, voice) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = `call-button ${kind}`;
      b.setAttribute("aria-label", label);
      b.addEventListener("click", (event) => {
        event.stopPropagation();
        onCall(name, { voice });
      });
      li.append(b);
    };
    if (!service.has(name)) {
      button("voice", t(busy.has(name) ? "voice-call-busy-label" : "voice-call-label", { name: who }), true);
    }
    const label = service.has(name)
      ? t("call-echo-label", { name })
      : busy.has(name)
        ? t("call-busy-label", { name: who })
        : t("call-label", { name: who });
    button("video", label, false);
    li.addEventListener("click", () => onCall(name, { voice: false }));
    return li;
  });
  elements.users.replaceChildren(...items);
  const people = others.filter((name) => !service.has(name));
  elements.peopleHint.dataset.i18n = people.length === 0 ? "nobody-here" : "click-to-call";
  elements.peopleHint.textContent = t(elements.peopleHint.dataset.i18n);
}

/** Someone is calling (`voice`: a voice call): the Accept / Decline panel, or `null` to
 *  put it away. */
export function showIncoming(caller, { voice = false } = {}) {
  const ringing = caller !== null;
  elements.incoming.hidden = !ringing;
  elements.incomingText.textContent = ringing ? t(voice ? "voice-call-from" : "is-calling-you", { name: caller }) : "";
  document.title = ringing ? t("title-call-from", { name: caller }) : t("title");
  if (ringing) elements.accept.focus();
}

/** We are ringing `peer` (Hang Up becomes Cancel), or `null` when that is over. */
export function showRinging(peer) {
  const ringing = peer !== null;
  setLabel(elements.hangUp, ringing ? "cancel" : "hang-up");
  elements.hangUp.setAttribute("aria-label", ringing ? t("cancel-call-to", { name: peer }) : t("hang-up-label"));
  elements.hangUp.disabled = !ringing && elements.mute.disabled;
}

/** The room bar: in a room, its name and invite link; in the lobby, the New room button. */
export function showRoom(room, link) {
  elements.roomInfo.hidden = !room;
  elements.lobbyInfo.hidden = Boolean(room);
  elements.newRoom.hidden = Boolean(room);
  if (room) {
    elements.welcomeText.dataset.i18n = "welcome-room";
    elements.welcomeText.dataset.i18nVars = JSON.stringify({ room });
    elements.welcomeText.textContent = t("welcome-room", { room });
  }
  elements.roomName.textContent = room;
  elements.inviteLink.value = link ?? "";
}

export function showLocalStream(stream) {
  elements.localVideo.srcObject = stream;
  // Without a camera (a voice call) there is no picture of ourselves to show.
  elements.localVideo.hidden = Boolean(stream) && stream.getVideoTracks().every((t) => t.readyState === "ended");
}

export function showRemoteStream(stream, peer) {
  if (elements.remoteVideo.srcObject !== stream) elements.remoteVideo.srcObject = stream;
  elements.peerLabel.textContent = peer;
  elements.peerLabel.hidden = false;
}

/** The other person as initials, shown over their picture while their camera is off. */
export function showPeer(peer) {
  elements.avatar.textContent = initials(peer);
}

/** Up to two letters of `name` (its words' first, or its first two), upper-cased. */
export function initials(name) {
  const words = name.trim().split(/[\s._-]+/u).filter(Boolean);
  const letters = words.length > 1 ? words.slice(0, 2).map((w) => [...w][0]) : [...(words[0] ?? "")].slice(0, 2);
  return letters.join("").toLocaleUpperCase();
}

/** A voice call (no video at first) or not: the call screen is laid out for it. */
export function setVoice(voice) {
  document.body.dataset.voice = String(voice);
}

export function setInCall(inCall) {
  const controls = [elements.hangUp, elements.mute, elements.camera, elements.switchCamera, elements.share, elements.fit, elements.pip];
  for (const control of controls) control.disabled = !inCall;
  elements.fullscreen.disabled = !inCall || !document.fullscreenEnabled;
  elements.pip.hidden = !document.pictureInPictureEnabled;
  if (inCall) showEnded(null);
  setLabel(elements.hangUp, "hang-up");
  elements.hangUp.setAttribute("aria-label", t("hang-up-label"));
}

/** The language switch: each language named in itself; `choose` runs on a change. */
export function showLanguages(names, current, choose) {
  const select = $("language");
  const options = Object.entries(names).map(([code, name]) => {
    const option = document.createElement("option");
    option.value = code;
    option.lang = code;
    option.textContent = name;
    option.selected = code === current;
    return option;
  });
  select.replaceChildren(...options);
  select.onchange = () => choose(select.value);
}

export function showSharing(sharing) {
  setLabel(elements.share, sharing ? "stop-sharing" : "share-screen");
  elements.share.setAttribute("aria-pressed", String(sharing));
}

/** The call's duration and connection quality; `null` hides them. */
export function showCallInfo(timer, quality) {
  elements.timer.hidden = timer === null;
  elements.timer.textContent = timer ?? "";
  elements.quality.hidden = quality === null;
  elements.quality.textContent = quality ?? "";
}

/** Our own microphone and camera buttons. */
export function showLocalMediaState({ audio, video }) {
  setLabel(elements.mute, audio ? "mute" : "unmute");
  elements.mute.setAttribute("aria-pressed", String(!audio));
  setLabel(elements.camera, video ? "camera-off" : "camera-on");
  elements.camera.setAttribute("aria-pressed", String(!video));
}

/** What the other side told us of their microphone and camera. */
export function showRemoteMediaState({ audio, video }) {
  elements.remoteMuted.hidden = audio;
  elements.remoteCameraOff.hidden = video;
  elements.avatar.hidden = video;
}

/**
 * The camera and microphone pickers. `devices` is {video, audio} (MediaDeviceInfo[]),
 * `current` the device ids in use; a picker with nothing to pick stays disabled.
 */
export function showDevices(devices, current) {
  const fill = (select, list, selected, device) => {
    const options = list.map((item, i) => {
      const option = document.createElement("option");
      option.value = item.deviceId;
      option.textContent = item.label || t("device-numbered", { device, n: i + 1 });
      option.selected = item.deviceId === selected;
      return option;
    });
    select.replaceChildren(...options);
    select.disabled = list.length < 2;
  };
  fill(elements.cameraSelect, devices.video, current.video, t("camera"));
  elements.switchCamera.hidden = devices.video.length < 2;
  fill(elements.microphoneSelect, devices.audio, current.audio, t("microphone"));
}

/** Empties both videos and disables Hang Up. */
export function clearCall() {
  for (const video of [elements.localVideo, elements.remoteVideo]) {
    video.srcObject = null;
    video.removeAttribute("src");
  }
  elements.peerLabel.hidden = true;
  elements.peerLabel.textContent = "";
  setVoice(false);
  showRemoteMediaState({ audio: true, video: true });
  showLocalMediaState({ audio: true, video: true });
  showCallInfo(null, null);
  showSharing(false);
  setInCall(false);
}

/** Appends a chat line: time, sender, text, all as plain text. */
export function appendChat({ name, text, date }) {
  const li = document.createElement("li");
  // The sender's clock is not to be trusted: a date no browser can show becomes now.
  let when = new Date(Number.isFinite(date) ? date : Date.now());
  if (Number.isNaN(when.getTime())) when = new Date();
  const stamp = document.createElement("time");
  stamp.dateTime = when.toISOString();
  stamp.textContent = time(when);
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = name;
  const body = document.createElement("span");
  body.textContent = text;
  li.append(stamp, who, body);
  const box = elements.chatbox;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.append(li);
  if (atBottom) box.scrollTop = box.scrollHeight;
  if (document.body.dataset.chat !== "open") showUnread(unread + 1);
}
