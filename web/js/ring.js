// Ringing, so nobody misses a call: a ring tone made in the page (Web Audio: two tones,
// two seconds on, four off), and a system notification when the tab is hidden.
//
// Browsers let a page make sound only after the person did something on it: prepare()
// runs on the sign-in click, so the tone can start the moment a call comes in; the
// notification permission is asked then too, never on load.

import { t } from "./i18n.js";

let audio = null; // the AudioContext, made on a click
let ringing = null; // {oscillators, gain, timer, notification} while it rings

/** On the person's first click or key: lets the page ring later. */
export function unlock() {
  try {
    if (!audio) {
      audio = new AudioContext();
      if (!ringing) audio.suspend(); // silent until a call comes in
    }
  } catch {
    audio = null; // no Web Audio: calls still show, just without a tone
  }
}

/** On signing in: asks once whether a hidden tab may show incoming calls. */
export function askToNotify() {
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().catch(() => {});
  }
}

/** Rings for a call from `caller` until stop(). */
export function start(caller) {
  stop();
  const current = { oscillators: [], gain: null, timer: null, notification: null };
  ringing = current;
  if (!audio) {
    try {
      audio = new AudioContext(); // allowed when the browser lets pages play sound
    } catch {
      audio = null;
    }
  }
  if (audio) {
    const gain = audio.createGain();
    gain.gain.value = 0;
    gain.connect(audio.destination);
    for (const frequency of [440, 480]) {
      const oscillator = audio.createOscillator();
      oscillator.frequency.value = frequency;
      oscillator.connect(gain);
      oscillator.start();
      current.oscillators.push(oscillator);
    }
    current.gain = gain;
    let on = false;
    const beat = () => {
      if (ringing !== current) return; // answered (or ended) meanwhile
      on = !on;
      gain.gain.setTargetAtTime(on ? 0.12 : 0, audio.currentTime, 0.02);
      current.timer = setTimeout(beat, on ? 2000 : 4000);
    };
    audio.resume().then(beat, () => {});
  }
  if (document.hidden && "Notification" in window && Notification.permission === "granted") {
    try {
      const notification = new Notification(t("title-call-from", { name: caller }), {
        body: t("is-calling-you", { name: caller }),
        tag: "duet-call",
        requireInteraction: true,
      });
      notification.onclick = () => {
        window.focus();
        notification.close();
      };
      current.notification = notification;
    } catch {
      // some browsers allow notifications only from a service worker: the tone still rings
    }
  }
}

/** The call was answered, declined or ended: silence, and the notification goes away. */
export function stop() {
  if (!ringing) return;
  clearTimeout(ringing.timer);
  for (const oscillator of ringing.oscillators) oscillator.stop();
  ringing.gain?.disconnect();
  ringing.notification?.close();
  ringing = null;
  audio?.suspend();
}
