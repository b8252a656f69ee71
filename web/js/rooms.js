// Rooms: a new private room (a name nobody can guess) and its link, copied for sharing.

import * as ui from "./ui.js";
import { t, translate } from "./i18n.js";

/** A room name of 128 random bits: 22 characters of base64url. */
function newRoomName() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Shows `room` ("" for the lobby) with its link, and wires the room buttons. */
export function wireRooms(room, accessMode) {
  ui.showRoom(room, room ? `${window.location.origin}/r/${room}` : null);
  if (accessMode !== "open") ui.elements.invite.dataset.i18n = "copy-room-link"; // members still sign in
  translate(ui.elements.invite.parentElement);
  ui.elements.newRoom.addEventListener("click", () => window.location.assign(`/r/${newRoomName()}`));
  ui.elements.invite.addEventListener("click", async () => {
    const link = ui.elements.inviteLink.value;
    try {
      await navigator.clipboard.writeText(link);
      ui.setStatus(t("room-link-copied"), "ok");
    } catch {
      ui.elements.inviteLink.select();
      ui.setStatus(t("copy-room-link-selected"));
    }
  });
}
