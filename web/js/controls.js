// The in-call controls: mute, camera off, switching camera or microphone mid-call, and
// sharing the screen instead of the camera. They act on the application's state (its
// local stream, its call, the shared screen) and tell the other side what changed.

import { listDevices, openCamera, openDevice, openScreen } from "./media.js";
import * as ui from "./ui.js";
import { t } from "./i18n.js";

/** Where the chosen camera and microphone are remembered. */
export const DEVICE_KEYS = { video: "duet.camera", audio: "duet.microphone" };

/**
 * Wires the control buttons and device pickers to `app` ({localStream, call, screen});
 * `send` sends a signaling message. Returns {showDevices}, which refreshes the pickers.
 */
export function wireCallControls(app, send) {
  const controls = new CallControls(app, send);
  const on = (element, event, handler) => element.addEventListener(event, handler);
  on(ui.elements.switchCamera, "click", () => controls.nextCamera());
  on(ui.elements.cameraSelect, "change", () => controls.switchDevice("video", ui.elements.cameraSelect.value));
  on(ui.elements.microphoneSelect, "change", () => controls.switchDevice("audio", ui.elements.microphoneSelect.value));
  navigator.mediaDevices?.addEventListener("devicechange", () => {
    if (app.localStream) controls.showDevices();
  });
  on(ui.elements.share, "click", () => controls.toggleSharing());
  on(ui.elements.mute, "click", () => controls.toggle("audio"));
  on(ui.elements.camera, "click", () => controls.toggle("video"));
  return { showDevices: () => controls.showDevices() };
}

/** What each control does, on the application's state. */
class CallControls {
  constructor(app, send) {
    this.app = app;
    this.send = send;
  }

  /** Whether our microphone and camera are on (both, at the start of every call). */
  localMediaState() {
    const on = (kind) => this.app.localStream?.getTracks().some((t) => t.kind === kind && t.enabled) ?? true;
    return { audio: on("audio"), video: on("video") };
  }

  /** Turns our tracks of `kind` on or off and tells the other side. */
  async toggle(kind) {
    const { app } = this;
    if (!app.call || !app.localStream) return;
    if (kind === "video" && app.call.voice) {
      await this.toggleCamera();
    } else {
      const enabled = !this.localMediaState()[kind === "audio" ? "audio" : "video"];
      for (const track of app.localStream.getTracks()) if (track.kind === kind) track.enabled = enabled;
    }
    this.tellMediaState();
  }

  /** Shows and tells the other side whether our microphone and camera are on. */
  tellMediaState() {
    const state = this.localMediaState();
    ui.showLocalMediaState(state);
    if (this.app.call) this.send({ type: "media-state", target: this.app.call.peer, ...state });
  }

  /**
   * In a voice call the camera is opened when turned on and let go of when turned off
   * (its light goes out); it goes on the call's video line in place, no renegotiation.
   */
  async toggleCamera() {
    const { app } = this;
    const stream = app.localStream;
    const camera = stream.getVideoTracks().find((track) => track.readyState === "live");
    if (camera) {
      await app.call.stopSending("video");
      stream.removeTrack(camera);
      camera.stop();
      ui.showLocalStream(stream);
      return;
    }
    let track;
    try {
      track = await openCamera(localStorage.getItem(DEVICE_KEYS.video));
    } catch (err) {
      ui.setStatus(err.message, "error");
      return;
    }
    if (app.localStream !== stream || !app.call) {
      track.stop(); // the call ended meanwhile
      return;
    }
    await app.call.replaceTrack(track);
    stream.addTrack(track);
    ui.showLocalStream(stream);
    await this.showDevices();
  }

  /** The device ids our tracks come from. */
  devicesInUse() {
    const id = (track) => track?.getSettings().deviceId ?? null;
    const stream = this.app.localStream;
    return { video: id(stream?.getVideoTracks()[0]), audio: id(stream?.getAudioTracks()[0]) };
  }

  async showDevices() {
    ui.showDevices(await listDevices(), this.devicesInUse());
  }

  /**
   * Uses camera or microphone `deviceId` from now on: mid-call the new track replaces the
   * old one in place (no renegotiation), muted or off if the old one was.
   */
  async switchDevice(kind, deviceId) {
    localStorage.setItem(DEVICE_KEYS[kind], deviceId);
    const stream = this.app.localStream;
    if (!stream) return;
    const old = kind === "video" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
    if (old?.getSettings().deviceId === deviceId) return;
    let track;
    try {
      track = await openDevice(kind, deviceId);
    } catch (err) {
      // Many phones open one camera at a time: let go of this one and try again, and
      // take it back if the other still cannot be opened.
      track = kind === "video" && old ? await this.openInstead(stream, old, deviceId) : null;
      if (!track) {
        ui.setStatus(err.message, "error");
        await this.showDevices();
        return;
      }
    }
    if (this.app.localStream !== stream) {
      track.stop(); // the call ended meanwhile
      return;
    }
    await this.putInPlace(stream, kind, old, track);
    ui.setStatus(t("now-using", { device: track.label || t(kind === "video" ? "another-camera" : "another-microphone") }), "ok");
  }

  /**
   * Puts `track` where `old` was in `stream`, muted or off if `old` was: into the call
   * (in place, no renegotiation; while the screen is shared a new camera waits in the
   * stream for Stop sharing) and into your own picture.
   */
  async putInPlace(stream, kind, old, track) {
    const { app } = this;
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
  async openInstead(stream, old, deviceId) {
    const oldId = old.getSettings().deviceId;
    old.stop();
    try {
      return await openDevice("video", deviceId);
    } catch {
      const back = await openDevice("video", oldId).catch(() => null);
      if (back && this.app.localStream === stream) await this.putInPlace(stream, "video", old, back);
      else back?.stop();
      return null;
    }
  }

  /** The next camera in the list (front and back on a phone), instead of this one. */
  async nextCamera() {
    const cameras = (await listDevices()).video;
    if (cameras.length < 2) return;
    const at = cameras.findIndex((camera) => camera.deviceId === this.devicesInUse().video);
    await this.switchDevice("video", cameras[(at + 1) % cameras.length].deviceId);
    await this.showDevices();
  }

  /** Shares the screen instead of the camera, or goes back to the camera. */
  async toggleSharing() {
    if (!this.app.call) return;
    if (this.app.screen) await this.stopSharing();
    else await this.startSharing();
  }

  async stopSharing() {
    const { app } = this;
    const camera = app.localStream?.getVideoTracks()[0];
    const screen = app.screen;
    app.screen = null;
    screen.stop();
    if (camera) await app.call.replaceTrack(camera);
    ui.showLocalStream(app.localStream);
    ui.showSharing(false);
  }

  async startSharing() {
    const { app } = this;
    try {
      const screen = await openScreen();
      app.screen = screen;
      await app.call.replaceTrack(screen);
      ui.showLocalStream(new MediaStream([screen]));
      ui.showSharing(true);
      // The browser's own "Stop sharing" ends the track: go back to the camera then.
      screen.addEventListener("ended", () => {
        if (app.screen === screen) this.toggleSharing();
      });
    } catch (err) {
      ui.setStatus(err.message, "error");
    }
  }
}
