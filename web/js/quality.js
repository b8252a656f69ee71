// Connection quality in plain words, from two getStats() samples, and a call's running
// duration. No DOM.

import { number, t } from "./i18n.js";

/** Reads what matters from one getStats() report. */
export function sample(report) {
  const out = { at: performance.now(), bytesReceived: 0, packetsReceived: 0, packetsLost: 0, rttMs: null, relayed: null };
  for (const r of report.values()) {
    if (r.type === "inbound-rtp") {
      out.bytesReceived += r.bytesReceived ?? 0;
      out.packetsReceived += r.packetsReceived ?? 0;
      out.packetsLost += Math.max(0, r.packetsLost ?? 0);
    }
    if (r.type === "transport" && r.selectedCandidatePairId) {
      const pair = report.get(r.selectedCandidatePairId);
      if (pair?.currentRoundTripTime !== undefined) out.rttMs = Math.round(pair.currentRoundTripTime * 1000);
      const local = report.get(pair?.localCandidateId);
      const remote = report.get(pair?.remoteCandidateId);
      if (local && remote) out.relayed = local.candidateType === "relay" || remote.candidateType === "relay";
    }
  }
  return out;
}

/** A sentence about the connection between two samples, e.g.
 *  "Good connection · direct · 38 ms · 1.4 Mbit/s". */
export function describe(previous, current) {
  const seconds = Math.max(0.001, (current.at - previous.at) / 1000);
  const kbps = ((current.bytesReceived - previous.bytesReceived) * 8) / 1000 / seconds;
  const received = current.packetsReceived - previous.packetsReceived;
  const lost = current.packetsLost - previous.packetsLost;
  const lossPct = received + lost > 0 ? (100 * lost) / (received + lost) : 0;
  const rtt = current.rttMs;
  const verdict =
    lossPct > 5 || (rtt !== null && rtt > 400) || kbps < 50
      ? t("quality-poor")
      : lossPct > 1 || (rtt !== null && rtt > 200)
        ? t("quality-fair")
        : t("quality-good");
  const parts = [verdict, current.relayed === null ? null : t(current.relayed ? "relayed" : "direct")];
  if (rtt !== null) parts.push(t("ms", { n: number(rtt) }));
  const tenth = { minimumFractionDigits: 1, maximumFractionDigits: 1 };
  parts.push(kbps >= 1000 ? t("mbps", { n: number(kbps / 1000, tenth) }) : t("kbps", { n: number(Math.round(kbps)) }));
  if (lossPct >= 0.5) parts.push(t("lost-percent", { n: number(lossPct, tenth) }));
  return parts.filter(Boolean).join(" · ");
}

/** mm:ss (or h:mm:ss) since `startedAt` (performance.now() milliseconds). */
export function elapsed(startedAt, now) {
  const total = Math.max(0, Math.floor((now - startedAt) / 1000));
  const [h, m, s] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60];
  const two = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
}

/**
 * Once a second while `current()` holds: `show(duration, words)` with the call's
 * duration, and its quality measured every other second.
 */
export function watch(call, current, show) {
  if (call.watching) return;
  call.watching = true;
  const startedAt = performance.now();
  let previous = null;
  let words = t("measuring");
  let tick = 0;
  const timer = setInterval(async () => {
    if (!current()) {
      clearInterval(timer);
      return;
    }
    if (tick++ % 2 === 0) {
      const latest = sample(await call.pc.getStats());
      if (previous) words = describe(previous, latest);
      previous = latest;
    }
    if (current()) show(elapsed(startedAt, performance.now()), words);
  }, 1000);
  show("00:00", words);
}
