// A generic JSON-RPC 2.0 client, unchanged, against the real daemon: @open-rpc/client-js over
// WebSocket sends `params: []` for a call without params, notifications without an id, and
// batches as arrays. The gateway must answer each as JSON-RPC 2.0 says.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client, RequestManager, WebSocketTransport } from "@open-rpc/client-js";
import WebSocket from "ws";
import { removeDir, startGateway } from "./support/gateway.mjs";

let gateway;
let client;
let manager;

before(async () => {
  // No token: this client cannot send headers or subprotocols (loopback only, as the default).
  gateway = await startGateway({ token: null });
  const transport = new WebSocketTransport(gateway.url);
  manager = new RequestManager([transport]);
  client = new Client(manager);
});

after(async () => {
  client?.close();
  await gateway.stop();
  removeDir(gateway.dir);
});

describe("@open-rpc/client-js", () => {
  it("calls a method without params (params: [])", async () => {
    const info = await client.request({ method: "system.info" });
    assert.equal(typeof info.version, "string");
    const listed = await client.request({ method: "sessions.list", params: [] });
    assert.ok(Array.isArray(listed.sessions));
  });

  it("calls with named params and gets JSON-RPC errors", async () => {
    const created = await client.request({ method: "sessions.create", params: { sessionId: "openrpc:one" } });
    assert.equal(created.sessionId ?? created.id ?? "openrpc:one", "openrpc:one");
    await assert.rejects(client.request({ method: "no.such.method" }), (error) => error.code === -3);
  });

  it("sends notifications and batches", async () => {
    // A notification gets no reply; the client library would not expect one.
    await client.notify({ method: "sessions.create", params: { sessionId: "openrpc:note" } });
    manager.startBatch();
    const first = client.request({ method: "system.info" });
    const second = client.request({ method: "sessions.get", params: { sessionId: "openrpc:note" } });
    manager.stopBatch();
    const [info, session] = await Promise.all([first, second]);
    assert.equal(typeof info.version, "string");
    assert.equal(session.id, "openrpc:note", "the notification ran before the batch");
  });
});

describe("raw frames a JSON-RPC 2.0 client may send", () => {
  it("answers a batch with one array and a notification with nothing", async () => {
    const ws = new WebSocket(gateway.url);
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const frames = [];
    ws.on("message", (data) => frames.push(JSON.parse(data.toString())));
    ws.send(JSON.stringify({ jsonrpc: "2.0", method: "system.info" }));
    ws.send(JSON.stringify([{ jsonrpc: "2.0", id: 1, method: "system.info" }, { jsonrpc: "2.0", method: "system.info" }]));
    ws.send("[]");
    const deadline = Date.now() + 60_000;
    while (frames.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(frames.length, 2, JSON.stringify(frames));
    assert.ok(Array.isArray(frames[0]) && frames[0].length === 1 && frames[0][0].id === 1, JSON.stringify(frames[0]));
    assert.equal(frames[1].id, null);
    assert.equal(frames[1].error.code, -2);
    ws.close();
  });
});
