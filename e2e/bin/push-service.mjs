// npm's web-push-testing (a push-service emulator: it checks VAPID and decrypts what it
// is sent) on 127.0.0.1 only, on a port of the system's choice, keeping nothing on disk.
// Prints "listening on http://127.0.0.1:<port>" once it serves; stops with its parent.
//
//   POST /subscribe {"userVisibleOnly":"true","applicationServerKey":"<b64url>"}
//        ──► {data: {endpoint: ".../notify/<clientHash>", keys: {p256dh, auth}, clientHash}}
//   POST /notify/<clientHash>           (what duet sends: 201, or 410 once expired)
//   POST /get-notifications {clientHash} ──► {data: [decrypted payloads]}
//   POST /expire-subscription/<clientHash>

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { PushApiModel } = require("web-push-testing/src/PushApiModel.js");
const Server = require("web-push-testing/src/server.js");

const model = new PushApiModel();
const server = new Server(model, 0);
server.setRequestHandlers();
const listener = server._app.listen(0, "127.0.0.1", () => {
  const { port } = listener.address();
  model.notifyUrl = `http://127.0.0.1:${port}/notify/`;
  console.log(`listening on http://127.0.0.1:${port}`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
