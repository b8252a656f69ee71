// The call's stage around the videos: your own picture moved to any corner by dragging
// it (a finger or a mouse), the controls stepping aside while nobody touches the page,
// and the two disclosures of a small screen (the settings menu, the call's More sheet).

import * as ui from "./ui.js";

const CORNER_KEY = "duet.selfView";
const CORNERS = ["top-left", "top-right", "bottom-left", "bottom-right"];
const IDLE_MS = 4000;

/** The corner nearest to a point (x, y) of a box `width` by `height`. */
export function nearestCorner(x, y, width, height) {
  return `${y < height / 2 ? "top" : "bottom"}-${x < width / 2 ? "left" : "right"}`;
}

/** Lets `video` be dragged within its box; it settles in the nearest corner (kept). */
function movable(video) {
  const kept = localStorage.getItem(CORNER_KEY);
  video.dataset.corner = CORNERS.includes(kept) ? kept : "top-right";
  let drag = null;
  video.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    const box = video.offsetParent.getBoundingClientRect();
    const own = video.getBoundingClientRect();
    drag = { id: event.pointerId, box, dx: event.clientX - own.left, dy: event.clientY - own.top, width: own.width, height: own.height };
    video.setPointerCapture(event.pointerId);
    video.dataset.dragging = "true";
    event.preventDefault();
  });
  video.addEventListener("pointermove", (event) => {
    if (drag?.id !== event.pointerId) return;
    const { box } = drag;
    const left = Math.min(Math.max(event.clientX - box.left - drag.dx, 0), box.width - drag.width);
    const top = Math.min(Math.max(event.clientY - box.top - drag.dy, 0), box.height - drag.height);
    video.style.left = `${left}px`;
    video.style.top = `${top}px`;
  });
  const drop = (event) => {
    if (drag?.id !== event.pointerId) return;
    const { box } = drag;
    const own = video.getBoundingClientRect();
    const corner = nearestCorner(own.left + own.width / 2 - box.left, own.top + own.height / 2 - box.top, box.width, box.height);
    drag = null;
    video.style.removeProperty("left");
    video.style.removeProperty("top");
    delete video.dataset.dragging;
    video.dataset.corner = corner;
    localStorage.setItem(CORNER_KEY, corner);
  };
  video.addEventListener("pointerup", drop);
  video.addEventListener("pointercancel", drop);
}

/** In a call, the controls fade after a while without a touch, move or key, and come back on one. */
function fadeWhenIdle(inCall) {
  let timer = null;
  const awake = () => {
    document.body.dataset.idle = "false";
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (inCall()) document.body.dataset.idle = "true";
    }, IDLE_MS);
  };
  for (const kind of ["pointermove", "pointerdown", "keydown", "touchstart"]) document.addEventListener(kind, awake, { passive: true });
  awake();
}

/** A button that opens and closes a part of the page (body[data-`key`]); Escape closes it. */
function disclosure(key, button, { closeOnClickIn = null, onOpen = () => {} } = {}) {
  ui.showOpen(key, button, false);
  button.addEventListener("click", () => {
    const open = document.body.dataset[key] !== "open";
    if (open) onOpen();
    ui.showOpen(key, button, open);
  });
  closeOnClickIn?.addEventListener("click", (event) => {
    if (event.target.closest("button")) ui.showOpen(key, button, false);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.body.dataset[key] === "open") {
      ui.showOpen(key, button, false);
      button.focus();
    }
  });
}

/** Wires the stage; `inCall()` says whether a call is on. */
export function wireStage(inCall) {
  movable(ui.elements.localVideo);
  fadeWhenIdle(inCall);
  disclosure("menu", ui.elements.menu);
  // The More sheet and the chat panel take the same place on a phone: one at a time.
  disclosure("more", ui.elements.more, { closeOnClickIn: ui.elements.extras, onOpen: () => ui.showChat(false) });
}
