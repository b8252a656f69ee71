// Relay-only calls through duet's own TURN server, with the credentials signaling
// handed out: once over UDP, once over TCP, once over TLS (turns:), and once over TLS
// on the web port itself, the only way out of a network that allows nothing but 443.

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acceptCall, eventually, openPage, signIn, useDuetAndBrowser, userItem } from "../lib/harness.mjs";
import { assertCallEnded, assertMediaFlows, assertNoProblems } from "../lib/assertions.mjs";

const stateDir = mkdtempSync(join(tmpdir(), "duet-state-"));
// The self-signed certificate is also TURN's (turns:); Chromium is told to accept it.
const env = useDuetAndBrowser(
  ["--tls-self-signed", "--state-dir", stateDir, "--turn-listen", "127.0.0.1:0", "--turn-tls-port", "0"],
  ["--ignore-certificate-errors"],
);
after(() => rmSync(stateDir, { recursive: true, force: true }));

for (const [transport, relayProtocol] of [
  ["udp", "udp"],
  ["tcp", "tcp"],
  ["tls", "tls"],
  // One port for everything: TURN over TLS on the page's own HTTPS port.
  ["tls-web", "tls"],
]) {
  test(`a relay-only call flows through duet's TURN over ${transport}`, async () => {
    const options = { ignoreHTTPSErrors: true, turnTransport: transport };
    const ann = await openPage(env.browser, env.duet.url, options);
    const bo = await openPage(env.browser, env.duet.url, options);
    for (const page of [ann, bo]) await page.check("#relay-only");
    await signIn(ann, `ann-${transport}`);
    await signIn(bo, `bo-${transport}`);
    // The servers and credentials come from signaling, not from the page.
    const iceMessage = await eventually("ICE servers from signaling", () =>
      ann.received.find((m) => m.type === "ice-servers"),
    );
    const turn = iceMessage.iceServers.find((s) => s.username);
    assert.match(turn.username, /^\d+:duet-[0-9a-f]{8}-[0-9a-f]{16}$/, "an ephemeral username");
    assert.ok(turn.credential.length > 20, "a credential");
    assert.ok(turn.urls.some((u) => u.startsWith("turns:")), "TURN over TLS is offered");
    const webPort = new URL(env.duet.url).port;
    assert.ok(turn.urls.includes(`turns:127.0.0.1:${webPort}?transport=tcp`), "and on the web port");

    await userItem(ann, `bo-${transport}`).click();
    await acceptCall(bo);
    const a = await assertMediaFlows(bo, `bo receives ann via ${transport}`, { candidateType: "relay" });
    const b = await assertMediaFlows(ann, `ann receives bo via ${transport}`, { candidateType: "relay" });
    assert.equal(a.relayProtocol, relayProtocol, "bo's relay transport");
    assert.equal(b.relayProtocol, relayProtocol, "ann's relay transport");
    await eventually("the quality line to say relayed", async () =>
      / · relayed · /.test(await ann.textContent("#call-quality")),
    );

    await ann.click("#hangup-button");
    await assertCallEnded(bo, "bo");
    assertNoProblems(ann, bo);
    await ann.context().close();
    await bo.context().close();
  });
}
