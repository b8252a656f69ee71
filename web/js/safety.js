// The safety code: a short number both people in a call see, made from the two DTLS
// certificate fingerprints of the call (ours in the description we sent, theirs in the
// one we received, as their texts crossed signaling: a browser's pc.remoteDescription
// may be rewritten, and Chromium keeps only the last of several fingerprints). Anyone in the middle (duet's own server included) who replaced a
// fingerprint to read the media would make the two codes differ, so reading it to each
// other proves the call is end to end.
//
//   code = groups of 4 of (first 64 bits of SHA-256("duet safety code v1\n" + a + "\n" + b)) mod 10^12
//   a, b = the two fingerprints as "sha-256 AB:CD:…", sorted, so both sides agree
//
// docs/protocol.md says the same, and `duet call` computes it in Rust.

const $ = (id) => document.getElementById(id);

/** The first fingerprint in an SDP, preferring SHA-256, as "sha-256 AB:CD:…". */
export function fingerprintOf(sdp) {
  const found = [...String(sdp).matchAll(/^a=fingerprint:(\S+) ([0-9A-Fa-f:]+)\s*$/gm)].map(
    (m) => `${m[1].toLowerCase()} ${m[2].toUpperCase()}`,
  );
  return found.find((f) => f.startsWith("sha-256 ")) ?? found[0] ?? null;
}

/** The safety code for two fingerprints, e.g. "0421 9983 1207". */
export async function safetyCode(mine, theirs) {
  const [first, second] = [mine, theirs].sort();
  const data = new TextEncoder().encode(`duet safety code v1\n${first}\n${second}`);
  const digest = new DataView(await crypto.subtle.digest("SHA-256", data));
  const digits = (digest.getBigUint64(0) % 10n ** 12n).toString().padStart(12, "0");
  return digits.match(/.{4}/g).join(" ");
}

/** Shows the code of `call` (once both descriptions crossed signaling), or hides it. */
export async function showSafetyCode(call) {
  const live = call && !call.ended;
  const mine = live ? fingerprintOf(call.sdp.sent) : null;
  const theirs = live ? fingerprintOf(call.sdp.received) : null;
  const code = mine && theirs && crypto.subtle ? await safetyCode(mine, theirs) : null;
  $("safety-code").textContent = code ?? "";
  $("safety").hidden = !code;
}
