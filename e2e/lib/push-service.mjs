// npm's web-push-testing (bin/push-service.mjs) for browser tests: a push service that
// checks VAPID and decrypts what duet sends, on 127.0.0.1.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../bin/push-service.mjs", import.meta.url));

/** Starts the emulator; `stop()` ends it. */
export async function startPushService() {
  const proc = spawn(process.execPath, [SCRIPT], { stdio: ["pipe", "pipe", "inherit"] });
  const origin = await new Promise((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (chunk) => {
      out += chunk;
      const match = out.match(/listening on (\S+)/);
      if (match) resolve(match[1]);
    });
    proc.on("exit", (code) => reject(new Error(`the push service exited with ${code}`)));
  });
  const post = async (path, body) => {
    const response = await fetch(new URL(path, origin), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return response.json();
  };
  return {
    origin,
    /** A "browser's" subscription with `key` (duet's VAPID public key). */
    async subscribe(key) {
      const { data } = await post("/subscribe", { userVisibleOnly: "true", applicationServerKey: key });
      return { json: { endpoint: data.endpoint, keys: data.keys }, clientHash: data.clientHash };
    },
    /** What it received for `clientHash`, decrypted and parsed. */
    async received(clientHash) {
      const { data } = await post("/get-notifications", { clientHash });
      return data.messages.map((m) => JSON.parse(m));
    },
    stop() {
      proc.stdin.end();
      proc.kill();
    },
  };
}
