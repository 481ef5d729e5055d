// The daemon restarts under a connected client: SIGTERM, a new daemon on the same port and data
// dir. The request in flight rejects (never replayed), the client reconnects by itself, and calls
// work again, with seq counting restarted.
import assert from "node:assert/strict";
import { after, it } from "node:test";
import WebSocket from "ws";
import { ErrorCode, FlynnClient, FlynnError } from "@flynn/gateway-client";
import { removeDir, startGateway, TOKEN } from "./support/gateway.mjs";
import { nextEvent, within } from "./support/wait.mjs";

const cleanup = [];
after(async () => {
  while (cleanup.length > 0) await cleanup.pop()();
});

/** A `ws` WebSocket that records every frame the client writes, on any connection. */
function recordingWebSocket(sent) {
  return class RecordingWebSocket extends WebSocket {
    send(data, ...rest) {
      sent.push(String(data));
      return super.send(data, ...rest);
    }
  };
}

it("reconnects after the gateway restarts and never replays the request that was in flight", async () => {
  const first = await startGateway();
  cleanup.push(() => removeDir(first.dir));
  let current = first;
  cleanup.push(() => current.stop());

  const sent = [];
  const client = new FlynnClient({
    url: first.url,
    token: TOKEN,
    WebSocket: recordingWebSocket(sent),
    requestTimeoutMs: 15_000,
    reconnect: { initialDelayMs: 50, maxDelayMs: 400, jitter: 0.3 },
  });
  cleanup.push(() => client.close());
  const gaps = [];
  client.on("seqGap", (gap) => gaps.push(gap));
  const before = await client.connect();

  // A slow run, surely under way on the gateway (its first chunk arrived) when the daemon stops:
  // its next chunk is a minute away (the longest delay the embedded model takes), so the stop
  // comes first however slow the machine (6 s of streaming before: a stall could let it end).
  const marker = `in-flight-${Date.now()}`;
  let started;
  const firstChunk = new Promise((resolve) => (started = resolve));
  const inFlight = client.agent.send(
    { sessionId: "tsclient:restart", message: `${marker} [[delay:60000]] [[long:60]]` },
    { onEvent: () => started() },
  );
  await firstChunk;

  const closed = nextEvent(client, "close");
  const reconnecting = nextEvent(client, "reconnecting");
  const exit = await first.stop("SIGTERM");
  assert.equal(exit.code, 0, `graceful exit, stderr:\n${first.stderr().slice(-2000)}`);
  const close = await closed;
  assert.equal(close.code, 1001, "the gateway says it is going away");
  assert.equal(close.willReconnect, true);
  // A graceful shutdown cancels runs first, so the in-flight run gets its terminal reply
  // (RequestCancelled, saying why) before the 1001 close; it is never replayed.
  await assert.rejects(
    within(inFlight.result, 5_000, "the in-flight run"),
    (error) =>
      error instanceof FlynnError &&
      error.code === ErrorCode.RequestCancelled &&
      /shutting down/.test(error.message) &&
      error.method === "agent.send",
  );
  await reconnecting;
  assert.equal(client.state, "reconnecting");

  // Made while the gateway is down: waits for the new connection, then is sent once.
  const whileDown = client.system.info();
  const reopened = nextEvent(client, "open", undefined, 20_000);
  const second = await startGateway({ port: first.port, dir: first.dir });
  current = second;
  const open = await reopened;
  assert.equal(open.reconnected, true);
  assert.notEqual(open.info.connectionId, before.connectionId);
  assert.equal((await whileDown).connectionId, open.info.connectionId);

  // A streamed run works on the new connection; its seq starts again at 1 (no gap reported).
  const run = client.agent.send({ sessionId: "tsclient:restart", message: "after the restart" });
  const seqs = [];
  for await (const ev of run.events) seqs.push(ev.seq);
  assert.equal((await run.result).content, "You said: after the restart");
  assert.equal(seqs[0], 1);
  assert.deepEqual(gaps, []);

  // Never replayed: the marker left this client exactly once, and the new gateway's history of
  // the session holds it at most once (the old one may have stored it before stopping).
  assert.equal(sent.filter((frame) => frame.includes(marker)).length, 1, "the in-flight request was written once");
  const history = await client.sessions.get({ sessionId: "tsclient:restart" });
  const copies = history.history.filter((m) => m.role === "user" && m.content.includes(marker)).length;
  assert.ok(copies <= 1, `the marker is in the history ${copies} times`);
});
