// A session D-Bus of the test's own with a desktop notification service on it
// (bin/notifications.py), so a browser launched with `env` shows its notifications there,
// and a test reads them and clicks their buttons for real (ActionInvoked: a trusted click
// in the browser, which may then open or focus a window).

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const SERVICE = fileURLToPath(new URL("../bin/notifications.py", import.meta.url));

export async function startNotifications() {
  // (Its warning that it may not raise its file limit is of no matter here.)
  const bus = spawn("dbus-daemon", ["--session", "--nofork", "--print-address=1"], { stdio: ["ignore", "pipe", "ignore"] });
  const address = await new Promise((resolve) => createInterface({ input: bus.stdout }).once("line", resolve));
  const env = { ...process.env, DBUS_SESSION_BUS_ADDRESS: address.trim() };
  const service = spawn("/usr/bin/python3", [SERVICE], { env, stdio: ["pipe", "pipe", "inherit"] });
  const shown = [];
  const waiting = [];
  await new Promise((resolve) =>
    createInterface({ input: service.stdout }).on("line", (line) => {
      const message = JSON.parse(line);
      if (message === "ready") return resolve();
      shown.push(message);
      for (const wait of waiting.splice(0)) wait();
    }),
  );
  return {
    /** What a browser needs in its environment to show notifications here. */
    env: { DBUS_SESSION_BUS_ADDRESS: env.DBUS_SESSION_BUS_ADDRESS },
    shown,
    /** The first notification shown whose summary matches `summary` (and `also`), waiting for it. */
    async find(summary, timeout = 15_000, also = () => true) {
      const deadline = Date.now() + timeout;
      for (;;) {
        const found = shown.find((n) => summary.test(n.summary) && also(n));
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no notification ${summary}; shown: ${JSON.stringify(shown)}`);
        await new Promise((resolve) => {
          waiting.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
    /** Clicks the button `action` of notification `id` ("default": the notification). */
    click(id, action) {
      service.stdin.write(`invoke ${id} ${action}\n`);
    },
    stop() {
      service.stdin.end();
      service.kill();
      bus.kill();
    },
  };
}
