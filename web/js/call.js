// One call with one person: the RTCPeerConnection and its offer/answer/ICE exchange.
//
// A state machine with no knowledge of the page. It reports through callbacks:
//   onState(state, detail)  state is "calling" | "answering" | "connecting" |
//                           "connected" | "interrupted" | "ended"
//   onRemoteStream(stream)
// and sends signaling through send(msg). It ends when ICE fails or closes, or when either
// side hangs up; a passing "disconnected" only reports "interrupted".

export class Call {
  /**
   * @param {{peer: string, iceServers?: RTCIceServer[], relayOnly?: boolean, send: (msg: object) => void,
   *          onState: (state: string, detail?: string) => void,
   *          onRemoteStream: (stream: MediaStream) => void}} options
   */
  constructor({ peer, iceServers = [], relayOnly = false, send, onState, onRemoteStream }) {
    this.peer = peer;
    this.send = send;
    this.onState = onState;
    this.onRemoteStream = onRemoteStream;
    this.state = "new";
    this.pendingCandidates = [];
    this.tracksAdded = false;
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
    this.pc.addEventListener("track", (event) => {
      this.onRemoteStream(event.streams[0] ?? new MediaStream([event.track]));
    });
    this.pc.addEventListener("iceconnectionstatechange", () => this.#iceStateChanged());
  }

  get ended() {
    return this.state === "ended";
  }

  /** Caller side: adds our tracks and sends the offer. */
  async start(localStream) {
    this.#setState("calling");
    this.#addTracks(localStream);
    const offer = await this.pc.createOffer();
    if (this.ended) return;
    await this.pc.setLocalDescription(offer);
    this.send({ type: "video-offer", target: this.peer, sdp: this.pc.localDescription.toJSON() });
  }

  /** Callee side (or a renegotiation): applies the offer and answers it. */
  async answer(sdp, localStream) {
    if (this.state === "new") this.#setState("answering");
    await this.pc.setRemoteDescription(sdp);
    await this.#flushCandidates();
    if (localStream && !this.tracksAdded) this.#addTracks(localStream);
    if (this.ended) return;
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    this.send({ type: "video-answer", target: this.peer, sdp: this.pc.localDescription.toJSON() });
    if (this.state === "answering") this.#setState("connecting");
  }

  /** Caller side: the callee's answer arrived. */
  async accept(sdp) {
    if (this.ended) return;
    await this.pc.setRemoteDescription(sdp);
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

  /** We hang up: tell the peer, then end. */
  hangUp() {
    if (this.ended) return;
    this.send({ type: "hang-up", target: this.peer });
    this.end("You hung up.");
  }

  /** Ends the call for `reason` without telling the peer (they already know, or cannot). */
  end(reason) {
    if (this.ended) return;
    this.pc.close();
    this.#setState("ended", reason);
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
        this.#setState("connected");
        break;
      case "disconnected":
        this.#setState("interrupted");
        break;
      case "failed":
        this.send({ type: "hang-up", target: this.peer });
        this.end("The connection failed: no network path was found between you.");
        break;
      case "closed":
        this.end("The connection closed.");
        break;
    }
  }

  #setState(state, detail) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state, detail);
  }
}
