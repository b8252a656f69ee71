// Cutting the network under a running call, inside the test's own network namespace
// (only e2e/isolated/ tests may use this: it affects every UDP packet on `lo`).

import { execFileSync } from "node:child_process";

const tc = (...args) => execFileSync("tc", args, { stdio: ["ignore", "ignore", "pipe"] });

/** Every UDP packet on lo goes to a class limited to 8 bit/s: the path is gone. TCP (signaling) is untouched. */
export function cutUdp() {
  tc("qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "20");
  tc("class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", "8bit", "ceil", "8bit");
  tc("class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", "10gbit");
  tc("qdisc", "add", "dev", "lo", "parent", "1:10", "handle", "10:", "pfifo", "limit", "1");
  tc("filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip", "protocol", "17", "0xff", "flowid", "1:10");
}

export function restoreUdp() {
  tc("qdisc", "del", "dev", "lo", "root");
}

