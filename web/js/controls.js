// The in-call controls: mute, camera off, switching camera or microphone mid-call, and
// sharing the screen instead of the camera. They act on the application's state (its
// local stream, its call, the shared screen) and tell the other side what changed.

import { listDevices, openDevice, openScreen } from "./media.js";
import * as ui from "./ui.js";
import { t } from "./i18n.js";

/** Where the chosen camera and microphone are remembered. */
export const DEVICE_KEYS = { video: "duet.camera", audio: "duet.microphone" };

/**
 * Wires the control buttons and device pickers to `app` ({localStream, call, screen});
 * `send` sends a signaling message. Returns {showDevices}, which refreshes the pickers.
 */
export function wireCallControls(app, send) {
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

  /** The device ids our tracks come from. */
  function devicesInUse() {
    const id = (track) => track?.getSettings().deviceId ?? null;
    return { video: id(app.localStream?.getVideoTracks()[0]), audio: id(app.localStream?.getAudioTracks()[0]) };
  }

  async function showDevices() {
    ui.showDevices(await listDevices(), devicesInUse());
  }

  /**
   * Uses camera or microphone `deviceId` from now on: mid-call the new track replaces the
   * old one in place (no renegotiation), muted or off if the old one was.
   */
  async function switchDevice(kind, deviceId) {
    localStorage.setItem(DEVICE_KEYS[kind], deviceId);
    const stream = app.localStream;
    if (!stream) return;
    const old = kind === "video" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
    if (old?.getSettings().deviceId === deviceId) return;
    let track;
    try {
      track = await openDevice(kind, deviceId);
    } catch (err) {
      // Many phones open one camera at a time: let go of this one and try again, and
      // take it back if the other still cannot be opened.
      track = kind === "video" && old ? await openInstead(stream, old, deviceId) : null;
      if (!track) {
        ui.setStatus(err.message, "error");
        await showDevices();
        return;
      }
    }
    if (app.localStream !== stream) {
      track.stop(); // the call ended meanwhile
      return;
    }
    await putInPlace(stream, kind, old, track);
    ui.setStatus(t("now-using", { device: track.label || t(kind === "video" ? "another-camera" : "another-microphone") }), "ok");
  }

  /**
   * Puts `track` where `old` was in `stream`, muted or off if `old` was: into the call
   * (in place, no renegotiation; while the screen is shared a new camera waits in the
   * stream for Stop sharing) and into your own picture.
   */
  async function putInPlace(stream, kind, old, track) {
    track.enabled = old?.enabled ?? true;
    if (app.call && !(kind === "video" && app.screen)) await app.call.replaceTrack(track);
    if (old) {
      stream.removeTrack(old);
      old.stop();
    }
    stream.addTrack(track);
    if (!app.screen) ui.showLocalStream(stream);
  }

  /** Stops camera track `old` of `stream` and opens `deviceId` instead; when that fails,
   *  the old camera again in place of `old` (null if even that fails). */
  async function openInstead(stream, old, deviceId) {
    const oldId = old.getSettings().deviceId;
    old.stop();
    try {
      return await openDevice("video", deviceId);
    } catch {
      const back = await openDevice("video", oldId).catch(() => null);
      if (back && app.localStream === stream) await putInPlace(stream, "video", old, back);
      else back?.stop();
      return null;
    }
  }

  /** The next camera in the list (front and back on a phone), instead of this one. */
  async function nextCamera() {
    const cameras = (await listDevices()).video;
    if (cameras.length < 2) return;
    const at = cameras.findIndex((camera) => camera.deviceId === devicesInUse().video);
    await switchDevice("video", cameras[(at + 1) % cameras.length].deviceId);
    await showDevices();
  }

  ui.elements.switchCamera.addEventListener("click", () => nextCamera());
  ui.elements.cameraSelect.addEventListener("change", () => switchDevice("video", ui.elements.cameraSelect.value));
  ui.elements.microphoneSelect.addEventListener("change", () => switchDevice("audio", ui.elements.microphoneSelect.value));
  navigator.mediaDevices?.addEventListener("devicechange", () => {
    if (app.localStream) showDevices();
  });

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

  return { showDevices };
}
