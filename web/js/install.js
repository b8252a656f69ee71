// duet as an app: the service worker (sw.js) is registered, "Install duet" appears where
// the browser offers installation, and on an iPhone or iPad, where it does not, a short
// note says how (Share, Add to Home Screen) and why (calls ring only there).

const $ = (id) => document.getElementById(id);

/** Registers the service worker and wires the install button and the iPhone note. */
export function setUpApp() {
  navigator.serviceWorker?.register("/sw.js").catch((err) => console.warn("no service worker:", err));
  let offered = null;
  addEventListener("beforeinstallprompt", (event) => {
    event.preventDefault(); // our button, where the person expects it
    offered = event;
    $("install-button").hidden = false;
  });
  $("install-button").addEventListener("click", async () => {
    if (!offered) return;
    const prompt = offered;
    offered = null;
    await prompt.prompt();
    $("install-button").hidden = true;
  });
  addEventListener("appinstalled", () => {
    $("install-button").hidden = true;
  });
  $("ios-install").hidden = !(isAppleMobile() && !installed());
}

/** An iPhone or iPad (iPadOS says it is a Mac, but has a touch screen). */
function isAppleMobile() {
  const ua = navigator.userAgent;
  return /iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1);
}

/** Opened from the Home Screen (or as an installed app). */
function installed() {
  return navigator.standalone === true || matchMedia("(display-mode: standalone)").matches;
}
