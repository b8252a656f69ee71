// Camera and microphone: asking for them, releasing them, explaining refusals.

import { t } from "./i18n.js";

const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 } };

/**
 * Asks for camera (unless `video` is false: a voice call) and microphone, preferring the
 * devices chosen before (a device that is gone is simply not preferred); throws an Error
 * whose message a person can act on.
 * @param {{video?: string | null, audio?: string | null}} preferred device ids
 */
export async function openCameraAndMicrophone(preferred = {}, { video = true } = {}) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error(t("insecure-camera"));
  }
  const prefer = (id) => (id ? { deviceId: { ideal: id } } : {});
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { ...prefer(preferred.audio) },
      video: video ? { ...VIDEO, ...prefer(preferred.video) } : false,
    });
  } catch (err) {
    throw new Error(describeMediaError(err));
  }
}

/** A camera track, from `preferredId` if that camera is still there. */
export async function openCamera(preferredId) {
  const prefer = preferredId ? { deviceId: { ideal: preferredId } } : {};
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { ...VIDEO, ...prefer } });
    return stream.getVideoTracks()[0];
  } catch (err) {
    throw new Error(describeMediaError(err));
  }
}

/** One track from exactly the device `deviceId` of `kind` ("video" or "audio"). */
export async function openDevice(kind, deviceId) {
  const exact = { deviceId: { exact: deviceId } };
  try {
    const stream = await navigator.mediaDevices.getUserMedia(
      kind === "video" ? { video: { ...VIDEO, ...exact } } : { audio: exact },
    );
    return stream.getTracks()[0];
  } catch (err) {
    throw new Error(describeMediaError(err));
  }
}

/** Cameras and microphones, once the page may see their names. */
export async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return {
    video: devices.filter((d) => d.kind === "videoinput" && d.deviceId),
    audio: devices.filter((d) => d.kind === "audioinput" && d.deviceId),
  };
}

/** Stops every track, so the camera light goes off. */
export function stopStream(stream) {
  for (const track of stream?.getTracks() ?? []) track.stop();
}

export function describeMediaError(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return t("media-refused");
    case "NotFoundError":
    case "OverconstrainedError":
      return t("media-not-found");
    case "NotReadableError":
    case "AbortError":
      return t("media-in-use");
    default:
      return t("media-other", { why: err?.name ?? t("unknown-error") });
  }
}

/** A screen, window or tab, chosen by the person. */
export async function openScreen() {
  try {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    return stream.getVideoTracks()[0];
  } catch (err) {
    if (err?.name === "NotAllowedError") throw new Error(t("share-cancelled"));
    throw new Error(t("share-failed", { why: err?.name ?? t("unknown-error") }));
  }
}
