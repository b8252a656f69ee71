// The application: wires the signaling connection, calls, media and the page together.

import { SignalingConnection, signalingUrl } from "./signaling.js";
import { Call } from "./call.js";
import { openCameraAndMicrophone, openScreen, stopStream } from "./media.js";
import * as ui from "./ui.js";
import * as quality from "./quality.js";

const NAME_KEY = "duet.name";
const RELAY_KEY = "duet.relayOnly";

const app = {
  me: null, // our name, once the server has accepted one
  requestedName: null, // what we asked for, or what the server gave instead
  typedName: null, // what the person typed
  users: [],
  call: null,
  localStream: null,
  signaling: null,
  iceServers: [], // duet's STUN/TURN with fresh credentials, renewed by the server
  screen: null, // the screen track while sharing; the camera track stays in localStream
};

function send(msg) {
  if (!app.signaling.send(msg)) ui.setStatus("Not connected to the server.", "error");
}

// ---- signaling ---------------------------------------------------------------------

const handlers = {
  id() {},
  "ice-servers"(msg) {
    app.iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : [];
  },
  rejectusername(msg) {
    app.requestedName = msg.name;
  },
  userlist(msg) {
    app.users = msg.users;
    // The server confirms a sign-in (or rename) by listing the name.
    if (app.requestedName && app.me !== app.requestedName && msg.users.includes(app.requestedName)) {
      signedIn(app.requestedName);
    }
    if (app.me) ui.renderUserList(app.users, app.me, startCall);
  },
  message(msg) {
    ui.appendChat(msg);
  },
  async "video-offer"(msg) {
    if (app.call && app.call.peer !== msg.name) {
      // Busy: turn the second caller away without disturbing this call.
      send({ type: "hang-up", target: msg.name });
      ui.setStatus(`${msg.name} tried to call you while you were in a call.`, "info");
      return;
    }
    if (!app.call) {
      beginCall(msg.name);
      ui.setStatus(`${msg.name} is calling you. Connecting…`);
      const stream = await localMedia();
      if (!stream) {
        app.call.hangUp();
        return;
      }
    }
    await app.call.answer(msg.sdp, app.localStream);
  },
  async "video-answer"(msg) {
    if (app.call?.peer === msg.name) await app.call.accept(msg.sdp);
  },
  async "new-ice-candidate"(msg) {
    if (app.call?.peer === msg.name) await app.call.addCandidate(msg.candidate);
  },
  "media-state"(msg) {
    if (app.call?.peer === msg.name) ui.showRemoteMediaState(msg);
  },
  "hang-up"(msg) {
    if (app.call?.peer === msg.name) app.call.end(`${msg.name} hung up.`);
  },
  error(msg) {
    if (msg.code === "no-such-user" && app.call?.peer === msg.target) {
      app.call.end(`${msg.target} is no longer online.`);
      return;
    }
    ui.setStatus(`The server refused a message: ${msg.message}`, "error");
  },
};

function connect() {
  app.signaling = new SignalingConnection(signalingUrl(window.location), {
    onOpen() {
      ui.setConnected(true);
      ui.setStatus("Connected. Choose a name and sign in.");
      const saved = localStorage.getItem(NAME_KEY);
      if (saved && !ui.elements.name.value) ui.elements.name.value = saved;
    },
    async onMessage(msg) {
      const handler = handlers[msg.type];
      if (handler) await handler(msg);
    },
    onClose(event) {
      ui.setConnected(false);
      app.call?.end("Lost the connection to the server.");
      const why = event.code === 1001 ? "The server is shutting down." : "Lost the connection to the server.";
      ui.setStatus(`${why} Reload the page to reconnect.`, "error");
    },
    onHandlerError(err) {
      console.warn(err);
      ui.setStatus(err.message, "error");
    },
  });
  app.signaling.connect();
}

function signedIn(name) {
  app.me = name;
  localStorage.setItem(NAME_KEY, name);
  ui.showSignedIn(name);
  if (app.call) return;
  if (name !== app.typedName) ui.setStatus(`The name ${app.typedName} was taken, so you are signed in as ${name}.`, "ok");
  else ui.setStatus(`Signed in as ${name}. Click a name to call.`, "ok");
}

// ---- calls -------------------------------------------------------------------------

async function localMedia() {
  if (app.localStream) return app.localStream;
  try {
    app.localStream = await openCameraAndMicrophone();
    ui.showLocalStream(app.localStream);
    return app.localStream;
  } catch (err) {
    ui.setStatus(err.message, "error");
    return null;
  }
}

function beginCall(peer) {
  const relayOnly = ui.elements.relayOnly.checked;
  if (relayOnly && !app.iceServers.some((s) => s.username)) {
    ui.setStatus("Relay only needs a TURN server, and this duet has none: the call will use direct connections.", "error");
  }
  const call = new Call({
    peer,
    iceServers: app.iceServers,
    relayOnly: relayOnly && app.iceServers.some((s) => s.username),
    send,
    onRemoteStream: (stream) => ui.showRemoteStream(stream, peer),
    onState: (state, detail) => callStateChanged(call, state, detail),
  });
  app.call = call;
  ui.setInCall(true);
  return call;
}

function callStateChanged(call, state, detail) {
  if (app.call !== call) return;
  const peer = call.peer;
  switch (state) {
    case "calling":
      ui.setStatus(`Calling ${peer}…`);
      break;
    case "connecting":
      ui.setStatus(`Connecting to ${peer}…`);
      break;
    case "connected":
      ui.setStatus(`In a call with ${peer}.`, "ok");
      watchCall(call);
      break;
    case "interrupted":
      ui.setStatus(`The connection to ${peer} is interrupted; waiting for it to come back…`);
      break;
    case "ended":
      app.call = null;
      app.screen?.stop();
      app.screen = null;
      stopStream(app.localStream);
      app.localStream = null;
      ui.clearCall();
      ui.setStatus(`Call with ${peer} ended. ${detail ?? ""}`.trim());
      break;
  }
}

/** Once a second while `call` lasts: its duration, and its quality every other second. */
function watchCall(call) {
  if (call.watching) return;
  call.watching = true;
  const startedAt = performance.now();
  let previous = null;
  let words = "Measuring the connection…";
  let tick = 0;
  const timer = setInterval(async () => {
    if (app.call !== call || call.ended) {
      clearInterval(timer);
      return;
    }
    if (tick++ % 2 === 0) {
      const current = quality.sample(await call.pc.getStats());
      if (previous) words = quality.describe(previous, current);
      previous = current;
    }
    if (app.call === call && !call.ended) ui.showCallInfo(quality.elapsed(startedAt, performance.now()), words);
  }, 1000);
  ui.showCallInfo("00:00", words);
}

async function startCall(peer) {
  if (!app.me) return;
  if (app.call) {
    ui.setStatus(`You are already in a call with ${app.call.peer}. Hang up first.`, "error");
    return;
  }
  const call = beginCall(peer);
  ui.setStatus(`Calling ${peer}…`);
  const stream = await localMedia();
  if (!stream) {
    call.end("Your camera or microphone could not be opened.");
    ui.setStatus("Your camera or microphone could not be opened, so the call was not started.", "error");
    return;
  }
  try {
    await call.start(stream);
  } catch (err) {
    call.end(`Could not start the call (${err.message}).`);
  }
}

// ---- page --------------------------------------------------------------------------

ui.elements.loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = ui.elements.name.value.trim();
  if (!name) {
    ui.setStatus("Type a name first.", "error");
    return;
  }
  app.requestedName = name;
  app.typedName = name;
  send({ type: "username", name, date: Date.now() });
});

ui.elements.hangUp.addEventListener("click", () => app.call?.hangUp());

/** Whether our microphone and camera are on (both, at the start of every call). */
function localMediaState() {
  const on = (kind) => app.localStream?.getTracks().some((t) => t.kind === kind && t.enabled) ?? true;
  return { audio: on("audio"), video: on("video") };
}

/** Turns our tracks of `kind` on or off and tells the other side. */
function toggle(kind) {
  if (!app.call || !app.localStream) return;
  const enabled = !localMediaState()[kind === "audio" ? "audio" : "video"];
  for (const track of app.localStream.getTracks()) if (track.kind === kind) track.enabled = enabled;
  const state = localMediaState();
  ui.showLocalMediaState(state);
  send({ type: "media-state", target: app.call.peer, ...state });
}

/** Shares the screen instead of the camera, or goes back to the camera. */
async function toggleSharing() {
  if (!app.call) return;
  const camera = app.localStream?.getVideoTracks()[0];
  if (app.screen) {
    const screen = app.screen;
    app.screen = null;
    screen.stop();
    if (camera) await app.call.replaceTrack(camera);
    ui.showLocalStream(app.localStream);
    ui.showSharing(false);
    return;
  }
  try {
    const screen = await openScreen();
    app.screen = screen;
    await app.call.replaceTrack(screen);
    ui.showLocalStream(new MediaStream([screen]));
    ui.showSharing(true);
    // The browser's own "Stop sharing" ends the track: go back to the camera then.
    screen.addEventListener("ended", () => {
      if (app.screen === screen) toggleSharing();
    });
  } catch (err) {
    ui.setStatus(err.message, "error");
  }
}

ui.elements.share.addEventListener("click", () => toggleSharing());
ui.elements.mute.addEventListener("click", () => toggle("audio"));
ui.elements.camera.addEventListener("click", () => toggle("video"));

ui.elements.relayOnly.checked = localStorage.getItem(RELAY_KEY) === "1";
ui.elements.relayOnly.addEventListener("change", () => {
  localStorage.setItem(RELAY_KEY, ui.elements.relayOnly.checked ? "1" : "0");
  if (app.call) ui.setStatus("Relay only applies from the next call.");
});

ui.elements.chatForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.elements.text.value;
  if (!text.trim()) return;
  send({ type: "message", text, date: Date.now() });
  ui.elements.text.value = "";
});

window.addEventListener("error", (event) => ui.setStatus(`Something went wrong: ${event.message}`, "error"));
window.addEventListener("unhandledrejection", (event) =>
  ui.setStatus(`Something went wrong: ${event.reason?.message ?? event.reason}`, "error"),
);
window.addEventListener("pagehide", () => app.call?.hangUp());

connect();
