// The application: wires the signaling connection, calls, media and the page together.
//
// A call goes: click a name → {call} → the other side rings (#accept-button,
// #decline-button) → {accept} → the caller offers → media. The server owns the call's
// state (ringing, busy, timeout); this page follows what it says. When the socket to the
// server drops, calls go on (media does not pass through the server), the socket
// reconnects and {resume}s this session with its token.

import { SignalingConnection, roomOf, signalingUrl } from "./signaling.js";
import { Call } from "./call.js";
import { openCameraAndMicrophone, stopStream } from "./media.js";
import { DEVICE_KEYS, wireCallControls } from "./controls.js";
import * as ui from "./ui.js";
import * as quality from "./quality.js";
import * as access from "./access.js";
import { showSafetyCode } from "./safety.js";
import * as ringTone from "./ring.js";
import * as check from "./check.js";
import { wireStage } from "./stage.js";
import { wireChat } from "./chat.js";
import { wireRooms } from "./rooms.js";
import * as recent from "./recent.js";
import * as quiet from "./quiet.js";
import { setUpApp } from "./install.js";
import * as pushRinging from "./push.js";
import { LANGUAGE_NAMES, language, onLanguageChange, setLanguage, t, translate } from "./i18n.js";

const NAME_KEY = "duet.name";
const RELAY_KEY = "duet.relayOnly";

const app = {
  me: null, // our name, once the server has accepted one
  requestedName: null, // what we asked for, or what the server gave instead
  typedName: null, // what the person typed
  renaming: false, // the welcome screen is back to pick another name
  session: null, // {name, token}: lets a new socket take this session back
  users: [],
  inCall: [],
  services: [],
  verified: [], // who signed in with an account, as the server says
  access: null, // the server's access mode and this page's session (/api/access)
  ring: null, // while a call rings: {peer, role: "caller" | "callee", callId, offer, candidates}
  call: null, // once the call is accepted: the Call
  localStream: null,
  signaling: null,
  iceServers: [], // duet's STUN/TURN with fresh credentials, renewed by the server
  screen: null, // the screen track while sharing; the camera track stays in localStream
};

function send(msg) {
  app.signaling.send(msg); // queued while reconnecting, sent after the session resumes
}

/** Runs `action` in turn with incoming messages, so neither overtakes the other. */
function inOrder(action) {
  app.signaling.runInOrder(action);
}

// ---- signaling ---------------------------------------------------------------------

const ENDINGS = {
  busy: (name) => t("ended-busy", { name }),
  declined: (name, role) => t(role === "caller" ? "ended-declined-caller" : "ended-declined-callee", { name }),
  cancelled: (name) => t("ended-cancelled", { name }),
  missed: (name, role) => t(role === "caller" ? "ended-missed-caller" : "ended-missed-callee", { name }),
  "hung-up": (name) => t("ended-hung-up", { name }),
  disconnected: (name) => t("ended-disconnected", { name }),
  "answered-elsewhere": (name) => t("ended-answered-elsewhere", { name }),
  unavailable: (name) => t("ended-unavailable", { name }),
  failed: (name) => t("ended-failed", { name }),
};

/** Who we are and who is here: the session, names, the user list, chat. */
const sessionHandlers = {
  id() {},
  "ice-servers"(msg) {
    app.iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : [];
    // A call's later ICE restarts use the fresh credentials (those of a session before
    // a server restart no longer work there).
    const pc = app.call && !app.call.ended ? app.call.pc : null;
    try {
      pc?.setConfiguration({ ...pc.getConfiguration(), iceServers: app.iceServers });
    } catch (err) {
      console.warn("could not renew the call's ICE servers", err);
    }
  },
  session(msg) {
    app.session = { name: msg.name, token: msg.token };
    app.signaling.flush();
  },
  resumed(msg) {
    app.session = { name: msg.name, token: msg.token };
    app.requestedName = msg.name;
    signedIn(msg.name, { silent: true });
    app.signaling.flush();
    if (app.ring && msg.partner !== app.ring.peer) {
      // The server restarted while it rang: that call is gone.
      endRing(t("server-restarted-ringing"));
    }
    ui.setStatus(app.call ? t("reconnected-in-call", { name: app.call.peer }) : t("reconnected"), "ok");
  },
  replaced() {
    app.signaling.stop();
    ui.setConnected(false);
    ui.setStatus(t("session-elsewhere"), "error");
  },
  rejectusername(msg) {
    app.requestedName = msg.name;
  },
  userlist(msg) {
    app.users = msg.users;
    const wasInCall = app.me && app.inCall.includes(app.me);
    app.inCall = Array.isArray(msg.inCall) ? msg.inCall : [];
    // A call on another of our devices ended: it is in Recent now.
    if (wasInCall && !app.inCall.includes(app.me)) recent.refresh({ soon: true });
    app.services = Array.isArray(msg.services) ? msg.services : [];
    app.verified = Array.isArray(msg.verified) ? msg.verified : [];
    // The server confirms a sign-in (or rename) by listing the name.
    if (app.requestedName && app.me !== app.requestedName && msg.users.includes(app.requestedName)) {
      signedIn(app.requestedName);
    }
    if (app.me) ui.renderUserList(app.users, app.me, app.inCall, app.services, app.verified, startCall);
  },
  message(msg) {
    chat.received(msg, app.me);
  },
  quiet(msg) {
    quiet.heard(msg);
  },
};

/** A call being made, taken or ended. */
const ringHandlers = {
  ringing(msg) {
    if (app.ring?.role !== "caller" || app.ring.peer !== msg.target) return;
    app.ring.callId = msg.callId;
    // `away`: none of their devices is online; duet rings them by push meanwhile.
    ui.setStatus(t(msg.away ? "ringing-away" : "ringing", { name: msg.target }));
  },
  "incoming-call"(msg) {
    if (app.ring?.role === "caller" && app.ring.peer === msg.name) return; // both called at once: the server pairs us
    if (app.ring || app.call) {
      send({ type: "decline", callId: msg.callId }); // the server answers busy itself; this is a late race
      return;
    }
    const voice = msg.voice === true;
    app.ring = { peer: msg.name, role: "callee", callId: msg.callId, offer: null, candidates: [], since: Date.now(), voice };
    if (app.acceptCall === msg.callId) {
      app.acceptCall = null; // Accept was pressed on the ringing notification
      acceptCall();
      return;
    }
    ui.showEnded(null);
    ui.showIncoming(msg.name, { voice });
    ringTone.start(msg.name);
    ui.setStatus(`${t(voice ? "voice-call-from" : "is-calling-you", { name: msg.name })}.`, "ok");
  },
  "call-accepted": callAccepted,
  "call-ended"(msg) {
    const words = ENDINGS[msg.reason] ?? ((name) => t("ended-other", { name }));
    if (app.ring?.peer === msg.name) {
      const { role, since, voice } = app.ring;
      const outcome = ringOutcome(msg.reason, role);
      recent.note({ peer: msg.name, direction: role === "caller" ? "out" : "in", at: since, outcome, voice });
      // Taken on another of our devices: nothing to call again, just quiet.
      endRing(words(msg.name, app.ring.role), { again: msg.reason !== "answered-elsewhere" });
    } else if (app.call?.peer === msg.name) {
      app.call.end(words(msg.name, app.call.role));
    } else if (msg.reason === "unavailable") {
      // They called while we wanted quiet: nothing rang, but it is a missed call.
      recent.note({ peer: msg.name, direction: "in", outcome: "missed" });
      recent.refresh({ soon: true });
    }
  },
  "hang-up"(msg) {
    ringHandlers["call-ended"]({ name: msg.name, reason: "hung-up" });
  },
};

/** What passes between the two sides of a call (held while ours still rings). */
const callHandlers = {
  async "video-offer"(msg) {
    if (app.ring?.role === "callee" && app.ring.peer === msg.name) {
      app.ring.offer = msg.sdp; // a caller that offers first: held until we accept
      return;
    }
    if (app.call?.peer === msg.name) await app.call.answer(msg.sdp, app.localStream);
  },
  async "video-answer"(msg) {
    if (app.call?.peer === msg.name) await app.call.accept(msg.sdp);
  },
  async "new-ice-candidate"(msg) {
    if (app.ring?.role === "callee" && app.ring.peer === msg.name) {
      app.ring.candidates.push(msg.candidate);
      return;
    }
    if (app.call?.peer === msg.name) await app.call.addCandidate(msg.candidate);
  },
  "media-state"(msg) {
    if (app.call?.peer === msg.name) ui.showRemoteMediaState(msg);
  },
};

/** Every message the server sends, by `type` (docs/protocol.md). */
const handlers = { ...sessionHandlers, ...ringHandlers, ...callHandlers, error: refused };

/** How a ring that ended unanswered goes into Recent, by the server's reason. */
function ringOutcome(reason, role) {
  if (reason === "answered-elsewhere") return "answered";
  if (role === "callee") return "missed"; // our own decline is noted where we decline
  const outcomes = { busy: "busy", declined: "declined", cancelled: "cancelled", "hung-up": "declined", unavailable: "unavailable" };
  return outcomes[reason] ?? "missed";
}

/** The call is on: the caller offers, the callee waits for the offer. */
async function callAccepted(msg) {
  if (app.ring?.peer !== msg.name) return;
  const { since, voice } = app.ring;
  app.ring = null;
  ui.showRinging(null);
  ui.showIncoming(null);
  const call = beginCall(msg.name, msg.role, since, { voice });
  const stream = await localMedia({ voice });
  if (!stream) {
    call.hangUp();
    ui.setStatus(t("media-failed-ended"), "error");
    return;
  }
  if (msg.role !== "caller") {
    ui.setStatus(t("connecting-to", { name: msg.name }));
    return;
  }
  try {
    await call.start(stream);
  } catch (err) {
    call.hangUp();
    ui.setStatus(t("call-start-failed", { why: err.message }), "error");
  }
}

/** What a refusal of the server's means here, by its code; the rest are shown as is. */
const REFUSALS = {
  "cannot-resume"() {
    // The name went to someone else while we were away: start a new session.
    app.session = null;
    app.signaling.discardQueued();
    app.call?.end(t("server-lost-too-long"));
    endRing(t("server-lost-too-long"));
    if (app.me) {
      app.requestedName = app.me;
      app.me = null;
      app.signaling.sendNow({ type: "username", name: app.requestedName, ringing: true });
    }
  },
  "no-such-user"(msg) {
    const words = t("no-longer-online", { name: msg.target });
    if (app.ring?.peer === msg.target) endRing(words);
    else if (app.call?.peer === msg.target) app.call.end(words);
    else ui.setStatus(words, "error");
  },
  "rate-limited"() {
    chat.refused();
    ui.setStatus(t("too-fast"), "error");
  },
  "too-long"() {
    chat.refused();
    ui.setStatus(t("too-long"), "error");
  },
};

/** Messages that crossed an ending call on the way: nothing to tell the person. */
const CROSSED = new Set(["not-in-call", "call-not-accepted", "no-such-call"]);

function refused(msg) {
  const known = REFUSALS[msg.code];
  if (known) return known(msg);
  if (CROSSED.has(msg.code) && !app.call && !app.ring) return;
  ui.setStatus(t("server-refused", { why: msg.message }), "error");
}

function connect() {
  app.signaling = new SignalingConnection(signalingUrl(window.location), {
    onOpen(reconnected) {
      ui.setConnected(true);
      if (reconnected && app.session) {
        // The call goes on, or we hung up while away (the hang-up waits in the queue):
        // either way the server hears of it as ours (a restarted server then knows the
        // call, and passes the hang-up on).
        const live = app.call && !app.call.ended ? app.call.peer : undefined;
        const partner = live ?? app.signaling.queued("hang-up")?.target;
        app.signaling.sendNow({ type: "resume", name: app.session.name, token: app.session.token, partner });
        ui.setStatus(t("restoring-session"));
        return;
      }
      if (reconnected && app.me) {
        app.requestedName = app.me;
        app.me = null;
        app.signaling.sendNow({ type: "username", name: app.requestedName, ringing: true });
        return;
      }
      const fixed = app.access?.name;
      if (fixed) {
        // An account or a named invite: the name is the session's, sign in at once.
        app.requestedName = fixed;
        app.typedName = fixed;
        app.signaling.sendNow({ type: "username", name: fixed, ringing: true, date: Date.now() });
        return;
      }
      ui.setStatus(t("connected-choose-name"));
      const saved = localStorage.getItem(NAME_KEY);
      if (saved && !ui.elements.name.value) ui.elements.name.value = saved;
    },
    async onMessage(msg) {
      const handler = handlers[msg.type];
      if (handler) await handler(msg);
    },
    onClose(event, retryIn) {
      ui.setConnected(false);
      if (event.code === 4001) {
        signedOut();
        return;
      }
      if (retryIn === null) return;
      if (app.access?.mode !== "open") {
        // A refused upgrade (401) looks like any failed connection: ask the server.
        access.stillAdmitted().then((admitted) => admitted || signedOut());
      }
      const why = t(event.code === 1001 ? "server-restarting" : event.code === 1008 ? "could-not-keep-up" : "lost-server");
      const call = app.call ? ` ${t("call-goes-on")}` : "";
      ui.setStatus(`${t("reconnecting-in", { why, seconds: Math.ceil(retryIn / 1000) })}${call}`, "error");
    },
    onHandlerError(err) {
      console.warn(err);
      ui.setStatus(err.message, "error");
    },
  });
  app.signaling.connect();
}

/** The session ended (signed out, here or elsewhere, or revoked): no reconnecting. */
function signedOut() {
  app.signaling.stop();
  app.call?.end(t("signed-out"));
  endRing(t("signed-out"));
  app.me = null;
  recent.stop();
  showScreen();
  ui.setConnected(false);
  access.showSignedOut(app.access?.mode ?? "members");
  access.offerAccountSignIn();
  ui.setStatus(t("signed-out-come-back"), "error");
}

/**
 * The screen follows the state: welcome until signed in (or while renaming), the call
 * while one rings out or lasts, else home with the people to call.
 */
function showScreen() {
  const calling = app.call || app.ring?.role === "caller";
  const screen = !app.me || app.renaming ? "welcome" : calling ? "call" : "home";
  if (screen !== "welcome") check.close(); // the camera is the call's now, or nobody's
  ui.setScreen(screen);
}

function signedIn(name, { silent = false } = {}) {
  app.me = name;
  app.renaming = false;
  localStorage.setItem(NAME_KEY, name);
  ui.showSignedIn(name);
  showScreen();
  ui.renderUserList(app.users, app.me, app.inCall, app.services, app.verified, startCall);
  recent.start(startCall, { local: !app.access?.account });
  quiet.start(send, { resend: !app.access?.account });
  if (app.access?.account) pushRinging.start().catch((err) => console.warn("push ringing:", err));
  if (app.call || app.ring || silent) return;
  if (name !== app.typedName) ui.setStatus(t("name-taken-instead", { typed: app.typedName, name }), "ok");
  else ui.setStatus(t("signed-in-click", { name }), "ok");
}

// ---- ringing -----------------------------------------------------------------------

/** Click on a name: ring them (`voice`: a voice call, without the camera). The camera
 *  and microphone open meanwhile, so the call starts at once. */
function startCall(peer, { voice = false } = {}) {
  if (!app.me) return;
  if (app.ring?.role === "callee" && app.ring.peer === peer) {
    acceptCall(); // they called first: calling them back is answering
    return;
  }
  if (app.call || app.ring) {
    const other = app.call?.peer ?? app.ring.peer;
    ui.setStatus(t("already-in-call", { name: other }), "error");
    return;
  }
  app.ring = { peer, role: "caller", callId: null, offer: null, candidates: [], since: Date.now(), voice };
  ui.showRinging(peer);
  showScreen();
  ui.setStatus(t("calling", { name: peer }));
  send(voice ? { type: "call", target: peer, voice } : { type: "call", target: peer });
  inOrder(async () => {
    const stream = await localMedia({ voice });
    if (!stream && app.ring?.peer === peer) cancelRing(t("media-failed-not-started"));
  });
}

/** #accept-button: pick up, open the camera, answer. */
function acceptCall() {
  const ring = app.ring;
  if (ring?.role !== "callee") return;
  app.ring = null;
  ringTone.stop();
  ui.showIncoming(null);
  send({ type: "accept", callId: ring.callId });
  const call = beginCall(ring.peer, "callee", ring.since, { voice: ring.voice });
  ui.setStatus(t("connecting-to", { name: ring.peer }));
  inOrder(async () => {
    const stream = await localMedia({ voice: ring.voice });
    if (!stream) {
      call.hangUp();
      ui.setStatus(t("media-failed-ended"), "error");
      return;
    }
    if (ring.offer) {
      await call.answer(ring.offer, stream);
      for (const candidate of ring.candidates) await call.addCandidate(candidate);
    }
  });
}

/** #decline-button. */
function declineCall() {
  const ring = app.ring;
  if (ring?.role !== "callee") return;
  send({ type: "decline", callId: ring.callId });
  recent.note({ peer: ring.peer, direction: "in", at: ring.since, outcome: "declined", voice: ring.voice });
  endRing(t("you-declined", { name: ring.peer }));
}

/** The caller gives up while it rings. */
function cancelRing(reason = t("you-cancelled")) {
  const ring = app.ring;
  if (ring?.role !== "caller") return;
  send({ type: "hang-up", target: ring.peer });
  recent.note({ peer: ring.peer, direction: "out", at: ring.since, outcome: "cancelled", voice: ring.voice });
  endRing(reason);
}

function endRing(reason, { again = true } = {}) {
  if (!app.ring) return;
  const peer = app.ring.peer;
  app.ring = null;
  ringTone.stop();
  showScreen();
  if (again) offerAgain(peer, reason, { failed: false });
  else recent.refresh({ soon: true });
  ui.showRinging(null);
  ui.showIncoming(null);
  if (!app.call) {
    stopStream(app.localStream);
    app.localStream = null;
    ui.showLocalStream(null);
  }
  ui.setStatus(reason);
}

// ---- calls -------------------------------------------------------------------------

/** Our microphone and (unless `voice`) camera, opened once per call. */
async function localMedia({ voice = false } = {}) {
  if (app.localStream) return app.localStream;
  try {
    const preferred = { video: localStorage.getItem(DEVICE_KEYS.video), audio: localStorage.getItem(DEVICE_KEYS.audio) };
    app.localStream = await openCameraAndMicrophone(preferred, { video: !voice });
    ui.showLocalStream(app.localStream);
    await showDevices();
    return app.localStream;
  } catch (err) {
    ui.setStatus(err.message, "error");
    return null;
  }
}

/** A call with `peer` begins (`since`: when it was made, as it started ringing; `voice`:
 *  without cameras, until one is turned on). */
function beginCall(peer, role, since = Date.now(), { voice = false } = {}) {
  const relayOnly = ui.elements.relayOnly.checked;
  if (relayOnly && !app.iceServers.some((s) => s.username)) {
    ui.setStatus(t("no-turn-for-relay"), "error");
  }
  const call = new Call({
    peer,
    role,
    iceServers: app.iceServers,
    relayOnly: relayOnly && app.iceServers.some((s) => s.username),
    voice,
    send,
    onRemoteStream: (stream) => ui.showRemoteStream(stream, peer),
    onState: (state, detail) => callStateChanged(call, state, detail),
  });
  call.madeAt = since;
  app.call = call;
  ui.setInCall(true);
  ui.setVoice(voice);
  ui.showPeer(peer);
  if (voice) {
    ui.showRemoteMediaState({ audio: true, video: false });
    ui.showLocalMediaState({ audio: true, video: false });
  }
  ui.showChat(false); // on a phone the call takes the screen; chat is a tap away
  showScreen();
  // In a call, the keyboard starts on the control bar.
  requestAnimationFrame(() => ui.elements.mute.focus({ preventScroll: true }));
  return call;
}

function callStateChanged(call, state, detail) {
  if (app.call !== call) return;
  const peer = call.peer;
  switch (state) {
    case "calling":
    case "connecting":
      ui.setStatus(t("connecting-to", { name: peer }));
      break;
    case "connected":
      call.connectedAt ??= Date.now();
      ui.showFit();
      ui.setStatus(t("in-call-with", { name: peer }), "ok");
      quality.watch(call, () => app.call === call && !call.ended, ui.showCallInfo);
      showSafetyCode(call);
      break;
    case "interrupted":
      ui.setStatus(t("interrupted", { name: peer }));
      break;
    case "ended":
      recent.note({
        peer,
        direction: call.role === "caller" ? "out" : "in",
        at: call.madeAt,
        outcome: call.connectedAt ? "answered" : "failed",
        duration: call.connectedAt ? Math.round((Date.now() - call.connectedAt) / 1000) : 0,
        voice: call.voice,
      });
      app.call = null;
      showScreen();
      ui.showChat(false);
      app.screen?.stop();
      app.screen = null;
      stopStream(app.localStream);
      app.localStream = null;
      ui.clearCall();
      showSafetyCode(null);
      offerAgain(peer, detail ? t("call-ended-because", { name: peer, why: detail }) : t("call-ended", { name: peer }), {
        failed: ["connection-failed", "connection-lost", "server-lost-too-long"].some((key) => detail === t(key)),
      });
      ui.setStatus(detail ? t("call-ended-because", { name: peer, why: detail }) : t("call-ended", { name: peer }));
      break;
  }
}

// ---- page --------------------------------------------------------------------------

ui.elements.loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = ui.elements.name.value.trim();
  if (!name) {
    ui.setStatus(t("type-name-first"), "error");
    return;
  }
  app.requestedName = name;
  app.typedName = name;
  ringTone.askToNotify(); // a sensible moment: the person is coming in to take calls
  app.signaling.sendNow({ type: "username", name, ringing: true, date: Date.now() });
});

/** The call rang out or ended: say how, and offer to call again (and the test call after a failure). */
function offerAgain(peer, text, { failed }) {
  app.lastPeer = peer;
  recent.refresh({ soon: true });
  const testCall = app.services.length > 0 && !app.services.includes(peer);
  ui.showEnded(text, { advice: failed, testCall });
  ui.elements.callAgain.hidden = !app.users.includes(peer);
}

check.wire();
setUpApp();
app.acceptCall = acceptFromNotification();

/**
 * Accept on a ringing notification opens `?accept=<call>` (or, with a duet page open,
 * tells it): that call is picked up as soon as it rings here.
 */
function acceptFromNotification() {
  navigator.serviceWorker?.addEventListener("message", (event) => {
    if (event.data?.type !== "accept") return;
    if (app.ring?.role === "callee" && app.ring.callId === event.data.call) acceptCall();
    else app.acceptCall = event.data.call;
  });
  const url = new URL(location.href);
  const call = Number(url.searchParams.get("accept"));
  if (!url.searchParams.has("accept")) return null;
  url.searchParams.delete("accept");
  history.replaceState(null, "", url);
  return Number.isSafeInteger(call) ? call : null;
}
ui.elements.callAgain.addEventListener("click", () => {
  ui.showEnded(null);
  if (app.lastPeer) startCall(app.lastPeer);
});
ui.elements.testCall.addEventListener("click", () => {
  ui.showEnded(null);
  if (app.services[0]) startCall(app.services[0]);
});
ui.elements.fit.addEventListener("click", () => ui.toggleFit());
ui.elements.fullscreen.addEventListener("click", () => ui.toggleFullscreen().catch(() => {}));
ui.elements.pip.addEventListener("click", () => ui.togglePictureInPicture().catch(() => {}));
document.addEventListener("fullscreenchange", () => ui.showFullscreen());
// The browser lets a page ring once the person did something on it.
for (const kind of ["pointerdown", "keydown"]) document.addEventListener(kind, () => ringTone.unlock(), { once: true });
wireStage(() => Boolean(app.call));

ui.elements.rename.addEventListener("click", () => {
  app.renaming = true;
  showScreen();
  ui.elements.name.focus();
  ui.elements.name.select();
});
ui.elements.hangUp.addEventListener("click", () => {
  if (app.ring?.role === "caller") cancelRing();
  else app.call?.hangUp();
});
ui.elements.accept.addEventListener("click", acceptCall);
ui.elements.decline.addEventListener("click", declineCall);

const controls = wireCallControls(app, send);
const showDevices = controls.showDevices;

ui.elements.relayOnly.checked = localStorage.getItem(RELAY_KEY) === "1";
ui.elements.relayOnly.addEventListener("change", () => {
  localStorage.setItem(RELAY_KEY, ui.elements.relayOnly.checked ? "1" : "0");
  if (app.call) ui.setStatus(t("relay-next-call"));
});

const chat = wireChat(send);

window.addEventListener("error", (event) => ui.setStatus(t("went-wrong", { why: event.message }), "error"));
window.addEventListener("unhandledrejection", (event) =>
  ui.setStatus(t("went-wrong", { why: event.reason?.message ?? event.reason }), "error"),
);
window.addEventListener("online", () => app.signaling?.retryNow());
window.addEventListener("pagehide", () => {
  // Leaving on purpose: end what is going on and close the socket, so the server frees
  // the name now instead of waiting for a reconnect.
  if (app.ring?.role === "caller") cancelRing();
  else if (app.ring?.role === "callee") declineCall();
  app.call?.hangUp();
  app.signaling?.stop();
});

/** Comes in (signing in first if the server asks), then connects. */
async function start() {
  translate();
  ui.showLanguages(LANGUAGE_NAMES, language(), setLanguage);
  const why = check.cannotCall();
  if (why) {
    ui.showUnsupported(why);
    return;
  }
  onLanguageChange(() => {
    // What code wrote with names in it is written again in the new language.
    if (app.me) {
      ui.showSignedIn(app.me);
      ui.renderUserList(app.users, app.me, app.inCall, app.services, app.verified, startCall);
    }
    recent.redraw();
    access.redraw();
  });
  ui.setStatus(t("checking-access"));
  const admitted = access.admit(window.location, window.history, () => ui.setStatus(t("sign-in-to-come-in")));
  app.access = await admitted;
  const room = roomOf(window.location);
  wireRooms(room, app.access.mode);
  access.wireControls({
    room,
    leaving() {
      app.call?.hangUp();
      app.signaling?.stop();
    },
    say: ui.setStatus,
  });
  if (app.access.mode === "open" && !app.access.signedIn) access.offerAccountSignIn();
  connect();
}

start();
