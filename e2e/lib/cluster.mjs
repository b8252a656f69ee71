// Several duet nodes as an operator runs them: Debian's redis-server, two `duet serve
// --redis` nodes sharing a state directory, and Debian's haproxy in front, which pins
// each browser to a node by a cookie (DUETNODE=one|two) and sends it to the other node
// when its own is down.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually, sleep, startDuet } from "./harness.mjs";

/** A TCP port nobody holds now. */
export const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

const accepts = (port) =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.on("connect", () => (socket.destroy(), resolve(true)));
    socket.on("error", () => resolve(false));
  });

/** Starts `command` and fails loudly if it is not installed. */
function run(command, args) {
  const proc = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (chunk) => (stderr += chunk));
  proc.on("error", (err) => {
    throw new Error(`cannot start ${command} (./test.sh installs it): ${err.message}`);
  });
  proc.exited = new Promise((resolve) => proc.on("exit", resolve));
  Object.defineProperty(proc, "log", { get: () => stderr });
  return proc;
}

/** redis-server on `port`, without persistence: a restart starts empty. */
export async function startRedis(port) {
  const proc = run("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
  await eventually(`redis-server on ${port}`, () => accepts(port), { timeout: 10_000 });
  return proc;
}

/** Redis, two nodes and haproxy; `stop()` ends them all. */
export async function startCluster(extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), "duet-cluster-"));
  const cluster = { dir, nodes: {}, metrics: {} };
  cluster.redisPort = await freePort();
  cluster.redis = await startRedis(cluster.redisPort);
  const redisUrl = `redis://127.0.0.1:${cluster.redisPort}/`;
  for (const name of ["one", "two"]) {
    cluster.metrics[name] = await freePort();
    cluster.nodes[name] = await startDuet([
      "--redis", redisUrl, "--state-dir", dir, "--no-turn",
      "--metrics-listen", `127.0.0.1:${cluster.metrics[name]}`, ...extraArgs,
    ]);
  }
  const port = await freePort();
  const server = (name) => {
    const { host } = new URL(cluster.nodes[name].url);
    return `  server ${name} ${host} cookie ${name} check inter 500 fall 1 rise 2`;
  };
  const config = join(dir, "haproxy.cfg");
  writeFileSync(
    config,
    [
      "global",
      "  maxconn 256",
      "defaults",
      "  mode http",
      "  timeout connect 1s",
      "  timeout client 60s",
      "  timeout server 60s",
      "  timeout tunnel 1h",
      "  retries 2",
      "  option redispatch",
      "frontend web",
      `  bind 127.0.0.1:${port}`,
      "  default_backend duet",
      "backend duet",
      "  balance roundrobin",
      "  cookie DUETNODE insert indirect nocache",
      "  option httpchk GET /readyz",
      server("one"),
      server("two"),
      "",
    ].join("\n"),
  );
  cluster.haproxy = run("haproxy", ["-f", config, "-db"]);
  cluster.url = `http://127.0.0.1:${port}`;
  await eventually("haproxy to serve the page", async () => {
    try {
      return (await fetch(cluster.url)).ok;
    } catch {
      return false;
    }
  });

  cluster.restartRedis = async () => {
    cluster.redis.kill("SIGKILL");
    await cluster.redis.exited;
    cluster.redis = await startRedis(cluster.redisPort);
  };
  cluster.pauseRedis = async (ms) => {
    cluster.redis.kill("SIGSTOP");
    await sleep(ms);
    cluster.redis.kill("SIGCONT");
  };
  /** The node's figure `name` from /metrics. */
  cluster.figure = async (node, name) => {
    const text = await (await fetch(`http://127.0.0.1:${cluster.metrics[node]}/metrics`)).text();
    const line = text.split("\n").find((l) => l.split(/[{ ]/)[0] === name);
    return line === undefined ? undefined : Number(line.split(" ").at(-1));
  };
  cluster.stop = async () => {
    cluster.haproxy.kill("SIGTERM");
    await Promise.all(Object.values(cluster.nodes).map((node) => node.stop()));
    cluster.redis.kill("SIGCONT");
    cluster.redis.kill("SIGTERM");
    await Promise.all([cluster.haproxy.exited, cluster.redis.exited]);
    rmSync(dir, { recursive: true, force: true });
  };
  return cluster;
}

/** The cookie that pins a browser context to `node` behind the cluster's haproxy. */
export const pinnedTo = (cluster, node) => [{ name: "DUETNODE", value: node, url: cluster.url }];
