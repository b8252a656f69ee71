// The WebSocket to duet's signaling server.
//
// Incoming messages are handled strictly one after another: each handler may be async
// (setRemoteDescription, getUserMedia) and the next message waits for it, so an ICE
// candidate can never overtake the offer it belongs to. Knows nothing of the page.

export class SignalingConnection {
  /**
   * @param {string} url ws:// or wss:// address of the signaling endpoint
   * @param {{onOpen: () => void, onMessage: (msg: object) => Promise<void> | void,
   *          onClose: (event: CloseEvent) => void, onHandlerError: (err: Error) => void}} handlers
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.queue = Promise.resolve();
    this.socket = null;
  }

  connect() {
    const socket = new WebSocket(this.url, "json");
    this.socket = socket;
    socket.addEventListener("open", () => this.handlers.onOpen());
    socket.addEventListener("message", (event) => this.#enqueue(event.data));
    socket.addEventListener("close", (event) => this.handlers.onClose(event));
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Sends one message; returns false when the connection is not open. */
  send(msg) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(msg));
    return true;
  }

  #enqueue(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this.handlers.onHandlerError(new Error("The server sent something that is not JSON."));
      return;
    }
    this.queue = this.queue
      .then(() => this.handlers.onMessage(msg))
      .catch((err) => this.handlers.onHandlerError(err));
  }
}

/** The signaling address for the page's own origin (ws:// beside http://, wss:// beside https://). */
export function signalingUrl(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}
