// A scripted WebSocket server on 127.0.0.1 for what the real daemon cannot be made to do on
// demand: drop a connection mid-request, skip a seq number, stay silent. It records every frame
// it receives, so tests can prove what the client did (and did not) send.
import { once } from "node:events";
import { WebSocketServer } from "ws";

export class FakeGateway {
  /** Every frame received: `{ connection, frame }` (connection counts from 1). */
  received = [];
  /** Open server-side sockets. */
  sockets = new Set();
  port = 0;
  #connections = 0;
  #wss;

  /** `handler(frame, socket, connection)` answers a frame; return false to fall back to the defaults. */
  constructor(handler = () => false) {
    this.handler = handler;
  }

  async listen(port = this.port) {
    this.#wss = new WebSocketServer({ host: "127.0.0.1", port });
    await once(this.#wss, "listening");
    this.port = this.#wss.address().port;
    this.url = `ws://127.0.0.1:${this.port}/`;
    this.#wss.on("connection", (socket) => {
      const connection = ++this.#connections;
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("message", (data) => {
        const frame = JSON.parse(data.toString());
        this.received.push({ connection, frame });
        if (this.handler(frame, socket, connection) === false) this.#defaults(frame, socket, connection);
      });
    });
    return this;
  }

  #defaults(frame, socket, connection) {
    if (frame.method === "system.info") {
      reply(socket, frame.id, { connectionId: `fake-${connection}`, sessionId: `ws:fake-${connection}`, connections: 1, uptime: 0, version: "fake" });
    } else if (frame.method === "agent.cancel") {
      reply(socket, frame.id, { cancelled: true, rejected: 0 });
    }
  }

  /** Frames of `method` received so far. */
  framesOf(method) {
    return this.received.filter((r) => r.frame.method === method);
  }

  /** Breaks every connection without a close handshake (like a crash or a lost network). */
  dropAll() {
    for (const socket of this.sockets) socket.terminate();
  }

  /** Stops listening and drops every connection. */
  async stop() {
    this.dropAll();
    await new Promise((resolve) => this.#wss.close(resolve));
  }
}

export function reply(socket, id, result) {
  socket.send(JSON.stringify({ id, result }));
}

export function event(socket, id, name, data, seq) {
  socket.send(JSON.stringify({ id, event: name, data, seq }));
}
