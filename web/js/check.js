// The pre-call check on the welcome screen: your camera's picture, your microphone's
// level and the devices to use, before anyone calls. The camera opens only when asked
// (never on load) and closes on signing in; the devices chosen here are the ones calls use.

import { DEVICE_KEYS } from "./controls.js";
import { listDevices, openCameraAndMicrophone, stopStream } from "./media.js";
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let stream = null;
let metering = null; // {audio: AudioContext, frame}

function remembered() {
  return { video: localStorage.getItem(DEVICE_KEYS.video), audio: localStorage.getItem(DEVICE_KEYS.audio) };
}

/** Opens camera and microphone into the preview, with a level meter and the pickers. */
async function open(preferred = remembered()) {
  close();
  try {
    stream = await openCameraAndMicrophone(preferred);
  } catch (err) {
    $("check-error").textContent = err.message;
    $("check-error").hidden = false;
    return;
  }
  $("check-error").hidden = true;
  $("preview_video").srcObject = stream;
  $("check-area").hidden = false;
  meter(stream);
  const devices = await listDevices();
  const inUse = (kind) => stream?.getTracks().find((track) => track.kind === kind)?.getSettings().deviceId;
  for (const [kind, id, noun] of [["video", "check-camera", "camera"], ["audio", "check-microphone", "microphone"]]) {
    const select = $(id);
    select.replaceChildren(
      ...devices[kind].map((device, i) => {
        const option = document.createElement("option");
        option.value = device.deviceId;
        option.textContent = device.label || t("device-numbered", { device: t(noun), n: i + 1 });
        option.selected = device.deviceId === inUse(kind);
        return option;
      }),
    );
  }
}

/** The microphone's loudness, many times a second, on the meter. */
function meter(media) {
  try {
    const audio = new AudioContext();
    const analyser = audio.createAnalyser();
    analyser.fftSize = 512;
    audio.createMediaStreamSource(media).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    metering = { audio, frame: 0 };
    const tick = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const x of samples) sum += x * x;
      $("mic-level").value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      metering.frame = requestAnimationFrame(tick);
    };
    audio.resume().then(tick, () => {});
  } catch {
    $("mic-level").hidden = true; // no Web Audio: the picture still shows
  }
}

/** Closes the camera and microphone (on signing in, or when asked again). */
export function close() {
  if (metering) {
    cancelAnimationFrame(metering.frame);
    metering.audio.close();
    metering = null;
  }
  stopStream(stream);
  stream = null;
  $("preview_video").srcObject = null;
  $("check-area").hidden = true;
}

/** Wires the Check button and the pickers; a picked device is remembered for calls. */
export function wire() {
  $("check-button").addEventListener("click", () => open());
  for (const [kind, id] of [["video", "check-camera"], ["audio", "check-microphone"]]) {
    $(id).addEventListener("change", () => {
      localStorage.setItem(DEVICE_KEYS[kind], $(id).value);
      open();
    });
  }
}

/**
 * Why this browser cannot call from this page (a key of the string tables), or null:
 * no WebRTC at all, or a page that did not come over HTTPS (no camera then).
 */
export function cannotCall() {
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) return "unsupported-insecure";
  if (typeof window.RTCPeerConnection !== "function") return "unsupported-webrtc";
  return null;
}
