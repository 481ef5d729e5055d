// The daemon killed with SIGKILL during a turn (decision resumable-runs), then started again on
// the same port and data directory: the client reconnects by itself, its stream rejoins the turn
// with agent.attach, and the turn is reported interrupted (RequestCancelled, saying so), never
// done. A repeat of the same idempotencyKey answers the same and runs nothing.
import assert from "node:assert/strict";
import { after, it } from "node:test";
import WebSocket from "ws";
import { ErrorCode, FlynnClient, FlynnError } from "@flynn/gateway-client";
import { removeDir, startGateway, TOKEN } from "./support/gateway.mjs";
import { within } from "./support/wait.mjs";

const cleanup = [];
after(async () => {
  while (cleanup.length > 0) await cleanup.pop()();
});

/** A `ws` WebSocket that records every frame the client writes, on any connection. */
function recordingWebSocket(sent) {
  return class RecordingWebSocket extends WebSocket {
    send(data, ...rest) {
      sent.push(JSON.parse(String(data)));
      return super.send(data, ...rest);
    }
  };
}

/** Reads a streamed send to its end (iterating throws the call's error): event names, result or error. */
async function drain(run, onFirstContent = () => {}) {
  const names = [];
  try {
    for await (const ev of run.events) {
      if (ev.event === "content") onFirstContent();
      names.push(ev.event);
    }
    return { names, result: await run.result };
  } catch (error) {
    return { names, error };
  }
}

function assertInterrupted(what, { names, result, error }) {
  assert.equal(result, undefined, `${what}: never done, got ${JSON.stringify(result)}`);
  assert.ok(!names.includes("done"), `${what}: no done event: ${names}`);
  assert.ok(error instanceof FlynnError, `${what}: ${error}`);
  assert.equal(error.code, ErrorCode.RequestCancelled, `${what}: ${error.message}`);
  assert.match(error.message, /interrupted/, what);
  assert.equal(names.at(-1), "error", `${what}: ends with its error event: ${names}`);
}

it("a SIGKILL during a turn: after the restart the stream reports it interrupted, never done, and so does a repeat of its key", async () => {
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
    reconnect: { initialDelayMs: 50, maxDelayMs: 400, jitter: 0, maxAttempts: 200 },
  });
  cleanup.push(() => client.close());

  const sessionId = "tsclient:resume-kill";
  // Streams for a long while (chunks a minute apart, the longest delay the embedded model
  // takes): surely running when the daemon dies, however slow the machine.
  const message = "killed mid-turn [[delay:60000]] [[long:200]]";
  let started;
  const firstContent = new Promise((resolve) => (started = resolve));
  const streaming = drain(client.agent.send({ sessionId, message }), () => started());
  await within(firstContent, 20_000, "the first chunk");

  const exit = await first.stop("SIGKILL");
  assert.equal(exit.signal, "SIGKILL");
  const second = await startGateway({ port: first.port, dir: first.dir });
  current = second;

  const outcome = await within(streaming, 60_000, "the stream after the restart");
  assert.equal(outcome.names[0], "content", "the turn had started");
  assertInterrupted("the rejoined stream", outcome);
  // The send carried a key by default; after the restart the stream asked to rejoin its turn.
  const send = sent.find((f) => f.method === "agent.send");
  assert.equal(typeof send.params.idempotencyKey, "string");
  const rejoin = sent.filter((f) => f !== send && (f.method === "agent.attach" || f.method === "agent.send"));
  assert.ok(rejoin.length >= 1, `the stream rejoined: ${JSON.stringify(sent)}`);

  // The same key again: interrupted too, nothing runs.
  const repeat = await within(
    drain(client.agent.send({ sessionId, message, idempotencyKey: send.params.idempotencyKey })),
    20_000,
    "the repeat",
  );
  assertInterrupted("the repeated key", repeat);

  const session = await client.sessions.get({ sessionId, historyLimit: 100 });
  const copies = session.history.filter((m) => m.role === "user" && m.content === message).length;
  assert.equal(copies, 1, "the message was stored once");
  assert.equal(session.runId ?? null, null, "no turn runs after the restart");
});
