// Chat in the room: the panel opens and closes, the form sends a line; a line the server refuses (too fast, too
// long) is given back to the input, unless something new was typed meanwhile.

import * as ui from "./ui.js";

/** Wires the chat form to `send`; returns what the signaling handlers tell it. */
export function wireChat(send) {
  let last = null; // the last line sent, until it comes back or is refused

  ui.elements.chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.elements.text.value;
    if (!text.trim()) return;
    send({ type: "message", text, date: Date.now() });
    last = text;
    ui.elements.text.value = "";
  });

  // The chat buttons (a phone's home screen, a call's bar) open and close the panel; on a
  // phone it takes the place of the call's More sheet.
  for (const button of [ui.elements.chatButton, ui.elements.homeChat]) {
    button.addEventListener("click", () => {
      ui.showOpen("more", ui.elements.more, false);
      ui.showChat(document.body.dataset.chat !== "open");
    });
  }

  return {
    /** A chat line from the room: ours coming back means it was sent. */
    received(msg, me) {
      if (msg.name === me && msg.text === last) last = null;
      ui.appendChat(msg);
    },
    /** The server refused the last line: back into the input, so nothing is lost. */
    refused() {
      if (last !== null && !ui.elements.text.value) ui.elements.text.value = last;
      last = null;
    },
  };
}
