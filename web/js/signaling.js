// The WebSocket to duet's signaling server, kept open across network blips and server
// restarts.
//
// Incoming messages are handled strictly one after another: each handler may be async
// (setRemoteDescription, getUserMedia) and the next message waits for it, so an ICE
// candidate can never overtake the offer it belongs to.
//
// When the socket drops (anything but the page leaving), it reconnects with exponential
// backoff and jitter: 0.5 s, 1 s, 2 s... at most 10 s apart. Messages sent from the
// moment it drops until the application says they may go (after it has resumed its
// session on the new socket: flush()) wait in a bounded queue, so nothing is sent on a
// socket whose session is not back yet. Events from an old socket are ignored. Knows
// nothing of the page.

import { t } from "./i18n.js";

const FIRST_RETRY_MS = 500;
const LONGEST_RETRY_MS = 10_000;
const QUEUE_LIMIT = 200;

export class SignalingConnection {
  /**
   * @param {string} url ws:// or wss:// address of the signaling endpoint
   * @param {{onOpen: (reconnected: boolean) => void, onMessage: (msg: object) => Promise<void> | void,
   *          onClose: (event: CloseEvent, retryInMs: number | null) => void,
   *          onHandlerError: (err: Error) => void}} handlers
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.queue = Promise.resolve();
    this.socket = null;
    this.outbox = [];
    this.retries = 0;
    this.opened = false; // has any socket ever opened
    this.held = false; // since the socket dropped, until flush(): send() queues
    this.stopped = false;
    this.timer = null;
  }

  connect() {
    clearTimeout(this.timer);
    const socket = new WebSocket(this.url, "json");
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      this.retries = 0;
      const reconnected = this.opened;
      this.opened = true;
      this.handlers.onOpen(reconnected);
    });
    socket.addEventListener("message", (event) => {
      if (socket === this.socket) this.#enqueue(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this.socket) return;
      this.held = true;
      const retryIn = this.stopped ? null : this.#retryDelay();
      this.handlers.onClose(event, retryIn);
      // The handler may have stopped the connection for good (signed out).
      if (retryIn !== null && !this.stopped) this.timer = setTimeout(() => this.connect(), retryIn);
    });
  }

  /** Closes for good (the page is leaving, or another tab took over): no reconnecting. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close(1000);
  }

  /** Reconnects now instead of waiting out the backoff (the network came back). */
  retryNow() {
    if (this.stopped || this.isOpen || this.socket?.readyState === WebSocket.CONNECTING) return;
    this.connect();
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /**
   * Sends one message now if the socket is open and its session is on it, or queues it
   * for flush(). Returns false when it had to be queued.
   */
  send(msg) {
    if (this.isOpen && !this.held && this.outbox.length === 0) {
      this.socket.send(JSON.stringify(msg));
      return true;
    }
    if (this.outbox.length < QUEUE_LIMIT) this.outbox.push(msg);
    return false;
  }

  /** Sends one message now, ahead of anything queued (sign-in and resume). */
  sendNow(msg) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(msg));
    return true;
  }

  /** The session is on the open socket: sends what was queued, and sends at once from now on. */
  flush() {
    if (!this.isOpen) return;
    this.held = false;
    while (this.outbox.length > 0) this.socket.send(JSON.stringify(this.outbox.shift()));
  }

  /** The newest queued message of `type`, if any. */
  queued(type) {
    return this.outbox.findLast((msg) => msg.type === type);
  }

  /** Forgets what was queued (the session it belonged to is gone). */
  discardQueued() {
    this.outbox = [];
  }

  /** Runs `action` (a page event) in turn with incoming messages. */
  runInOrder(action) {
    this.queue = this.queue.then(action).catch((err) => this.handlers.onHandlerError(err));
  }

  #retryDelay() {
    const base = Math.min(LONGEST_RETRY_MS, FIRST_RETRY_MS * 2 ** this.retries);
    this.retries += 1;
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  #enqueue(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this.handlers.onHandlerError(new Error(t("not-json")));
      return;
    }
    this.queue = this.queue
      .then(() => this.handlers.onMessage(msg))
      .catch((err) => this.handlers.onHandlerError(err));
  }
}

/** The room this page is for: `/r/<room>` gives the room, anything else the lobby (""). */
export function roomOf(location) {
  const match = location.pathname.match(/^\/r\/([A-Za-z0-9_-]{1,64})\/?$/);
  return match ? match[1] : "";
}

/** The signaling address for the page's own origin and room (ws:// beside http://, wss:// beside https://). */
export function signalingUrl(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const room = roomOf(location);
  return `${scheme}//${location.host}/ws${room ? `?room=${room}` : ""}`;
}
