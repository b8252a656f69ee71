// A push service speaking Mozilla's push protocol (what Firefox's dom.push.serverURL
// connects to), on 127.0.0.1, so Firefox's own PushManager.subscribe works here and what
// duet sends to the endpoint it hands out reaches Firefox's service worker: the whole real
// path, encryption included (Firefox decrypts; an undecryptable push is acked 101).
//
//   Firefox ─ws (push-notification)─► hello ◄─ {uaid, status 200, use_webpush}
//            register{channelID} ◄─ {pushEndpoint: http://127.0.0.1:<port>/push/<channelID>}
//   duet ─POST /push/<channelID> (aes128gcm)─► 201 ─► notification{data: base64url} ─► ack

import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { WebSocketServer } from "ws";

/** Starts the service; `acks` lists what Firefox acknowledged ({channelID, code}). */
export async function startMozillaPush() {
  const channels = new Map(); // channelID → the socket of the Firefox that registered it
  const acks = [];
  const http = createServer((request, response) => {
    const match = request.method === "POST" && request.url.match(/^\/push\/([\w-]+)$/);
    const socket = match && channels.get(match[1]);
    const body = [];
    request.on("data", (chunk) => body.push(chunk));
    request.on("end", () => {
      if (!socket || socket.readyState !== socket.OPEN) {
        response.writeHead(410).end();
        return;
      }
      const data = Buffer.concat(body).toString("base64url");
      const version = randomUUID();
      const encoding = request.headers["content-encoding"] ?? "aes128gcm";
      socket.send(JSON.stringify({ messageType: "notification", channelID: match[1], version, data, headers: { encoding } }));
      response.writeHead(201, { Location: `/m/${version}` }).end();
    });
  });
  const sockets = new WebSocketServer({ server: http, handleProtocols: () => "push-notification" });
  sockets.on("connection", (socket) => {
    socket.on("message", (text) => {
      let message;
      try {
        message = JSON.parse(text);
      } catch {
        return;
      }
      const reply = (fields) => socket.send(JSON.stringify({ messageType: message.messageType, ...fields }));
      switch (message.messageType) {
        case "hello":
          reply({ uaid: message.uaid || randomUUID().replaceAll("-", ""), status: 200, use_webpush: true, broadcasts: {} });
          break;
        case "register": {
          channels.set(message.channelID, socket);
          const { port } = http.address();
          reply({ channelID: message.channelID, status: 200, pushEndpoint: `http://127.0.0.1:${port}/push/${message.channelID}` });
          break;
        }
        case "unregister":
          channels.delete(message.channelID);
          reply({ channelID: message.channelID, status: 200 });
          break;
        case "ack":
          acks.push(...(message.updates ?? []));
          break;
        default:
          socket.send("{}"); // a ping
      }
    });
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    serverURL: `ws://127.0.0.1:${port}/`,
    acks,
    stop: () => new Promise((resolve) => {
      sockets.close();
      http.closeAllConnections?.();
      http.close(resolve);
    }),
  };
}
