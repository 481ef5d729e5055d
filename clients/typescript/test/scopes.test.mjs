// Scopes (decision scopes) through the client: a read-only token reads, and a call needing
// another scope fails with a FlynnError carrying ScopeRequired (-6) and the scope it needs.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import WebSocket from "ws";
import { ErrorCode, FlynnClient, FlynnError, METHOD_SCOPES } from "@flynn/gateway-client";
import { removeDir, startGateway } from "./support/gateway.mjs";

const READ_TOKEN = "typescript-read-only-token";
let gateway;
let client;

before(async () => {
  gateway = await startGateway({
    toml: `\n[[server.tokens]]\nname = "ts-reader"\ntoken = "${READ_TOKEN}"\nscopes = ["read"]\n`,
  });
  client = new FlynnClient({ url: gateway.url, token: READ_TOKEN, WebSocket, requestTimeoutMs: 10_000 });
});

after(async () => {
  await client?.close();
  await gateway.stop();
  removeDir(gateway.dir);
});

it("reads with a read-only token and reports its scopes", async () => {
  const info = await client.system.info();
  assert.equal(typeof info.version, "string");
  const caps = await client.system.capabilities();
  assert.deepEqual(caps.scopes, ["read"]);
});

it("surfaces ScopeRequired with its code and the scope", async () => {
  assert.equal(ErrorCode.ScopeRequired, -6);
  assert.equal(METHOD_SCOPES["agent.send"], "chat");
  await assert.rejects(
    (async () => await client.agent.send({ sessionId: "ts:scopes", message: "hi" }))(),
    (error) => error instanceof FlynnError && error.code === ErrorCode.ScopeRequired && error.data?.scope === "chat",
  );
});
