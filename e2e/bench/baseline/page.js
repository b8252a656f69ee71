// Baseline call page: offer/answer/candidates through a relay that forwards every frame
// to every other connection. The same browser work as duet's client, nothing else.
const ws = new WebSocket(`ws://${location.host}/relay`);
const send = (msg) => ws.send(JSON.stringify(msg));
let pc = null;
let stream = null;
let queue = Promise.resolve();

async function setup() {
  stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  document.getElementById("local_video").srcObject = stream;
  pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  pc.onicecandidate = (e) => e.candidate && send({ type: "candidate", candidate: e.candidate.toJSON() });
  pc.ontrack = (e) => (document.getElementById("received_video").srcObject = e.streams[0]);
}

function teardown() {
  pc?.close();
  pc = null;
  for (const t of stream?.getTracks() ?? []) t.stop();
  stream = null;
  document.getElementById("received_video").srcObject = null;
  document.getElementById("local_video").srcObject = null;
}

document.getElementById("call").onclick = async () => {
  await setup();
  for (const t of stream.getTracks()) pc.addTrack(t, stream);
  await pc.setLocalDescription(await pc.createOffer());
  send({ type: "offer", sdp: pc.localDescription.toJSON() });
};
document.getElementById("hangup").onclick = () => {
  send({ type: "bye" });
  teardown();
};

ws.onmessage = (event) => {
  const msg = JSON.parse(event.data);
  queue = queue.then(async () => {
    if (msg.type === "offer") {
      await setup();
      await pc.setRemoteDescription(msg.sdp);
      for (const t of stream.getTracks()) pc.addTrack(t, stream);
      await pc.setLocalDescription(await pc.createAnswer());
      send({ type: "answer", sdp: pc.localDescription.toJSON() });
    } else if (msg.type === "answer") {
      await pc.setRemoteDescription(msg.sdp);
    } else if (msg.type === "candidate" && pc) {
      await pc.addIceCandidate(msg.candidate);
    } else if (msg.type === "bye") {
      teardown();
    }
  });
};
window.ready = new Promise((r) => ws.addEventListener("open", r));
