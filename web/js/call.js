// One call with one person: the RTCPeerConnection and its offer/answer/ICE exchange.
//
// A state machine with no knowledge of the page. It reports through callbacks:
//   onState(state, detail)  state is "calling" | "answering" | "connecting" |
//                           "connected" | "interrupted" | "ended"
//   onRemoteStream(stream)
// and sends signaling through send(msg).
//
// Surviving the network: when a connected call's ICE goes "disconnected" for
// RESTART_AFTER_MS, or "failed", the caller (the side that made the first offer) restarts
// ICE with a new offer, so a changed network (Wi-Fi to mobile, a new address) finds a new
// path; it tries again while the call stays down. If the call does not come back within
// GIVE_UP_MS, it ends. A call that never connected ends as soon as ICE fails.

import { t } from "./i18n.js";

const RESTART_AFTER_MS = 3_000;
const RETRY_RESTART_MS = 8_000;
const GIVE_UP_MS = 45_000;

export class Call {
  /**
   * @param {{peer: string, role: "caller" | "callee", iceServers?: RTCIceServer[], relayOnly?: boolean,
   *          send: (msg: object) => void, onState: (state: string, detail?: string) => void,
   *          onRemoteStream: (stream: MediaStream) => void}} options
   */
  constructor({ peer, role, iceServers = [], relayOnly = false, voice = false, send, onState, onRemoteStream }) {
    this.peer = peer;
    this.role = role;
    this.voice = voice;
    this.everConnected = false;
    this.iceRestarts = 0;
    this.restartTimer = null;
    this.giveUpTimer = null;
    this.send = send;
    this.onState = onState;
    this.onRemoteStream = onRemoteStream;
    this.state = "new";
    this.pendingCandidates = [];
    this.tracksAdded = false;
    // The descriptions as they crossed signaling: the safety code is made from these
    // texts, not from pc.remoteDescription, which a browser may rewrite (Chromium keeps
    // only the last of several a=fingerprint lines).
    this.sdp = { sent: null, received: null };
    this.pc = new RTCPeerConnection({
      iceServers,
      bundlePolicy: "max-bundle",
      // "relay" hides this device's addresses from the other side: media goes through TURN.
      iceTransportPolicy: relayOnly ? "relay" : "all",
    });
    this.pc.addEventListener("icecandidate", (event) => {
      if (event.candidate) {
        this.send({ type: "new-ice-candidate", target: this.peer, candidate: event.candidate.toJSON() });
      }
    });
    this.pc.addEventListener("track", (event) => this.#received(event.track));
    this.pc.addEventListener("iceconnectionstatechange", () => this.#iceStateChanged());
  }

  get ended() {
    return this.state === "ended";
  }

  /** Caller side: adds our tracks and sends the offer. */
  async start(localStream) {
    this.#setState("calling");
    this.#addTracks(localStream);
    // A voice call offers a video line with nothing on it, so that either side can turn
    // its camera on (and off) later by putting a track on it, without renegotiating.
    if (this.voice) this.pc.addTransceiver("video", { direction: "sendrecv" });
    const offer = await this.pc.createOffer();
    if (this.ended) return;
    await this.pc.setLocalDescription(offer);
    this.#sendDescription("video-offer");
  }

  /** Sends our local description as `type`, keeping the text that was sent. */
  #sendDescription(type) {
    const sdp = this.pc.localDescription.toJSON();
    this.sdp.sent = sdp.sdp;
    this.send({ type, target: this.peer, sdp });
  }

  /** Applies the peer's description `sdp`, keeping the text that was received. */
  async #receiveDescription(sdp) {
    this.sdp.received = sdp?.sdp ?? null;
    await this.pc.setRemoteDescription(sdp);
  }

  /** Callee side (or a renegotiation): applies the offer and answers it. */
  async answer(sdp, localStream) {
    if (this.state === "new") this.#setState("answering");
    await this.#receiveDescription(sdp);
    await this.#flushCandidates();
    if (localStream && !this.tracksAdded) this.#addTracks(localStream);
    if (this.voice) this.#readyToSendVideo();
    if (this.ended) return;
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    this.#sendDescription("video-answer");
    if (this.state === "answering") this.#setState("connecting");
  }

  /** Caller side: the callee's answer arrived. */
  async accept(sdp) {
    if (this.ended) return;
    await this.#receiveDescription(sdp);
    await this.#flushCandidates();
    if (this.state === "calling") this.#setState("connecting");
  }

  /** A trickled ICE candidate from the peer; kept until the remote description is set. */
  async addCandidate(candidate) {
    if (this.ended) return;
    if (!this.pc.remoteDescription) {
      this.pendingCandidates.push(candidate);
      return;
    }
    await this.pc.addIceCandidate(candidate);
  }

  /** Sends `track` instead of the current track of its kind, without renegotiating. */
  async replaceTrack(track) {
    const sender = this.pc.getSenders().find((s) => s.track?.kind === track.kind)
      ?? this.pc.getTransceivers().find((t) => t.receiver.track.kind === track.kind)?.sender;
    if (!sender) throw new Error(`no ${track.kind} is being sent`);
    await sender.replaceTrack(track);
  }

  /** Stops sending `kind` (a camera turned off in a voice call), without renegotiating. */
  async stopSending(kind) {
    const sender = this.pc.getSenders().find((s) => s.track?.kind === kind);
    await sender?.replaceTrack(null);
  }

  /** Our side of the offered video line sends too (once a camera is put on it). */
  #readyToSendVideo() {
    for (const transceiver of this.pc.getTransceivers()) {
      if (transceiver.receiver.track.kind === "video" && transceiver.direction === "recvonly") {
        transceiver.direction = "sendrecv";
      }
    }
  }

  /** We hang up: tell the peer, then end. */
  hangUp() {
    if (this.ended) return;
    this.send({ type: "hang-up", target: this.peer });
    this.end(t("you-hung-up"));
  }

  /** Caller side: a new offer with fresh ICE credentials, to find a new network path. */
  async restartIce() {
    if (this.ended || this.role !== "caller" || this.pc.signalingState !== "stable") return;
    this.iceRestarts += 1;
    const offer = await this.pc.createOffer({ iceRestart: true });
    if (this.ended) return;
    await this.pc.setLocalDescription(offer);
    this.#sendDescription("video-offer");
  }

  /** Ends the call for `reason` without telling the peer (they already know, or cannot). */
  end(reason) {
    if (this.ended) return;
    this.#clearRecovery();
    this.pc.close();
    this.#setState("ended", reason);
  }

  /**
   * One stream of everything the peer sends, whatever streams it named (a=msid) or did
   * not. A video track joins it once its first frames arrive: a picture that never comes
   * (a voice call's empty video line) would hold the sound back in the element playing
   * it; a camera turned on mid-call then joins the sound already playing.
   */
  #received(track) {
    this.remoteStream ??= new MediaStream();
    const show = () => {
      if (!this.remoteStream.getTracks().includes(track)) this.remoteStream.addTrack(track);
      this.onRemoteStream(this.remoteStream);
    };
    if (track.kind === "video" && track.muted) track.addEventListener("unmute", show, { once: true });
    else show();
  }

  #addTracks(stream) {
    this.tracksAdded = true;
    for (const track of stream.getTracks()) this.pc.addTrack(track, stream);
  }

  async #flushCandidates() {
    const pending = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const candidate of pending) await this.pc.addIceCandidate(candidate);
  }

  #iceStateChanged() {
    if (this.ended) return;
    switch (this.pc.iceConnectionState) {
      case "connected":
      case "completed":
        this.everConnected = true;
        this.#clearRecovery();
        this.#setState("connected");
        break;
      case "disconnected":
        this.#setState("interrupted");
        this.#recover(RESTART_AFTER_MS);
        break;
      case "failed":
        if (!this.everConnected) {
          // Nothing ever flowed: the call ends as failed for both (and in Recent).
          this.send({ type: "hang-up", target: this.peer, failed: true });
          this.end(t("connection-failed"));
          break;
        }
        this.#setState("interrupted");
        this.#recover(0);
        break;
      case "closed":
        this.end(t("connection-closed"));
        break;
    }
  }

  /** The call is down: restart ICE after `delayMs` (the caller) and give up in time. */
  #recover(delayMs) {
    if (!this.giveUpTimer) {
      this.giveUpTimer = setTimeout(() => {
        this.send({ type: "hang-up", target: this.peer });
        this.end(t("connection-lost"));
      }, GIVE_UP_MS);
    }
    if (this.role !== "caller") return;
    clearTimeout(this.restartTimer);
    const attempt = async () => {
      if (this.ended || this.pc.iceConnectionState === "connected" || this.pc.iceConnectionState === "completed") return;
      // A failed attempt (the peer's answer never came) is simply tried again.
      await this.restartIce().catch(() => {});
      this.restartTimer = setTimeout(attempt, RETRY_RESTART_MS);
    };
    this.restartTimer = setTimeout(attempt, delayMs);
  }

  #clearRecovery() {
    clearTimeout(this.restartTimer);
    clearTimeout(this.giveUpTimer);
    this.restartTimer = null;
    this.giveUpTimer = null;
  }

  #setState(state, detail) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state, detail);
  }
}
