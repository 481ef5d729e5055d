// Connection handling against a scripted server: seq gaps, no replay after a drop, backoff and
// giving up, timeouts (a streaming timeout cancels the run), aborts before sending.
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import WebSocket from "ws";
import { ClientErrorCode, FlynnClient, FlynnError } from "@flynn/gateway-client";
import { event, FakeGateway, reply } from "./support/fake-gateway.mjs";
import { nextEvent, within } from "./support/wait.mjs";

const cleanup = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()();
});

async function setup(handler, options = {}) {
  const fake = await new FakeGateway(handler).listen();
  cleanup.push(() => fake.stop());
  const client = new FlynnClient({
    url: fake.url,
    WebSocket,
    reconnect: { initialDelayMs: 10, maxDelayMs: 40, jitter: 0 },
    requestTimeoutMs: 5_000,
    ...options,
  });
  cleanup.push(() => client.close());
  return { fake, client };
}

const isCode = (code) => (error) => error instanceof FlynnError && error.code === code;

describe("seq gaps", () => {
  it("reports a jump in seq and restarts counting on a new connection", async () => {
    const { fake, client } = await setup((frame, socket) => {
      if (frame.method !== "agent.send") return false;
      const seqs = frame.params.message === "gap" ? [1, 2, 4] : [1, 2];
      for (const seq of seqs) event(socket, frame.id, "content", { text: `${seq} ` }, seq);
      event(socket, frame.id, "done", { content: "x" }, seqs.at(-1) + 1);
      reply(socket, frame.id, { content: "x", usage: { inputTokens: 1, outputTokens: 1 } });
    });
    const gaps = [];
    client.on("seqGap", (gap) => gaps.push(gap));
    const optionGaps = [];
    const client2 = new FlynnClient({ url: fake.url, WebSocket, onSeqGap: (gap) => optionGaps.push(gap) });
    cleanup.push(() => client2.close());

    const run = client.agent.send({ message: "gap" });
    const events = [];
    for await (const ev of run.events) events.push(ev.seq);
    assert.deepEqual(events, [1, 2, 4, 5]);
    assert.deepEqual(gaps, [{ expected: 3, got: 4 }]);
    await client2.agent.send({ message: "gap" });
    assert.deepEqual(optionGaps, [{ expected: 3, got: 4 }], "the onSeqGap option is called too");

    const reopened = nextEvent(client, "open");
    fake.dropAll();
    assert.equal((await reopened).reconnected, true);
    await client.agent.send({ message: "again" });
    assert.deepEqual(gaps, [{ expected: 3, got: 4 }], "seq 1 on the new connection is not a gap");
  });
});

describe("no silent replay", () => {
  it("rejects the in-flight request with connection_lost and never sends it again", async () => {
    // Without idempotency keys a send cannot rejoin its turn (see the resuming test below).
    const { fake, client } = await setup(
      (frame, socket) => {
        if (frame.method === "agent.send") {
          event(socket, frame.id, "content", { text: "started" }, 1);
          return true; // and never answer
        }
        if (frame.method === "sessions.list") {
          reply(socket, frame.id, { sessions: [], total: 0 });
          return true;
        }
        return false;
      },
      { idempotentSends: false },
    );
    let started;
    const startedPromise = new Promise((resolve) => (started = resolve));
    const run = client.agent.send({ sessionId: "t:1", message: "slow" }, { onEvent: () => started() });
    await startedPromise;
    const states = [];
    client.on("state", (state) => states.push(state));
    const closed = nextEvent(client, "close");
    fake.dropAll();
    await assert.rejects(run.result, (error) => {
      assert.ok(isCode(ClientErrorCode.ConnectionLost)(error), String(error));
      assert.equal(error.method, "agent.send");
      assert.match(error.message, /not retried/);
      return true;
    });
    assert.equal((await closed).willReconnect, true);

    // A call made while reconnecting waits for the new connection and is sent there once.
    const list = client.sessions.list();
    await nextEvent(client, "open");
    assert.deepEqual(await list, { sessions: [], total: 0 });
    assert.deepEqual(states.slice(0, 2), ["reconnecting", "open"]);
    assert.equal(fake.framesOf("agent.send").length, 1, "agent.send was written exactly once");
    assert.equal(fake.framesOf("sessions.list").length, 1);
    assert.equal(fake.framesOf("sessions.list")[0].connection, 2);
  });

  it("keeps a call made while the gateway is down until it is back, then sends it once", async () => {
    const { fake, client } = await setup(() => false, { reconnect: { initialDelayMs: 20, maxDelayMs: 60, jitter: 0 } });
    await client.connect();
    const port = fake.port;
    await fake.stop();
    await nextEvent(client, "reconnecting", (r) => r.attempt >= 2);
    const info = client.system.info();
    await nextEvent(client, "reconnecting", (r) => r.attempt >= 3);
    await fake.listen(port);
    const result = await within(info, 60_000, "system.info after the gateway came back");
    assert.equal(result.connectionId, "fake-2");
    // connection 2: the handshake and the queued call, nothing else.
    assert.deepEqual(
      fake.received.filter((r) => r.connection === 2).map((r) => r.frame.method),
      ["system.info", "system.info"],
    );
  });
});

describe("backoff", () => {
  it("waits initialDelayMs * 2^n up to maxDelayMs, then gives up after maxAttempts", async () => {
    const { fake, client } = await setup(() => false, {
      reconnect: { initialDelayMs: 20, maxDelayMs: 80, jitter: 0, maxAttempts: 4 },
    });
    await client.connect();
    const delays = [];
    client.on("reconnecting", ({ attempt, delayMs }) => delays.push([attempt, delayMs]));
    const idle = nextEvent(client, "state", (s) => s === "idle");
    const reconnecting = nextEvent(client, "reconnecting");
    await fake.stop();
    await reconnecting;
    const pending = client.call("system.capabilities");
    await idle;
    assert.deepEqual(delays, [
      [1, 20],
      [2, 40],
      [3, 80],
      [4, 80],
    ]);
    await assert.rejects(pending, isCode(ClientErrorCode.NotConnected));
  });

  it("connect() to nothing rejects with not_connected instead of retrying forever", async () => {
    const fake = await new FakeGateway().listen();
    const url = fake.url;
    await fake.stop();
    const client = new FlynnClient({ url, WebSocket });
    await assert.rejects(client.connect(), (error) => isCode(ClientErrorCode.NotConnected)(error) && /closed before it opened/.test(error.message));
    assert.equal(client.state, "idle");
  });
});

describe("timeouts and aborts", () => {
  it("a call times out after its timeoutMs", async () => {
    const { client } = await setup((frame) => frame.method === "sessions.list");
    const started = Date.now();
    await assert.rejects(client.call("sessions.list", {}, { timeoutMs: 150 }), isCode(ClientErrorCode.Timeout));
    assert.ok(Date.now() - started >= 140);
  });

  it("a streaming call times out on silence, not on length, and a timeout cancels the run", async () => {
    const { fake, client } = await setup((frame, socket) => {
      if (frame.method !== "agent.send") return false;
      if (frame.params.message === "chatty") {
        let seq = 0;
        const tick = setInterval(() => {
          seq += 1;
          if (seq <= 7) event(socket, frame.id, "content", { text: "." }, seq);
          else {
            clearInterval(tick);
            reply(socket, frame.id, { content: ".......", usage: { inputTokens: 1, outputTokens: 7 } });
          }
        }, 500);
      }
      return true; // "silent" gets nothing
    });
    // A timeout is the behaviour under test, so one bound stays: events every 500 ms against a
    // 3 s timeout (the fake and the client share this event loop, so only a stall of 2.5 s
    // between two events would fire it), for about 4 s in all; the lower bound below cannot be
    // broken by load (the fake's timer cannot fire early).
    const started = Date.now();
    const chatty = await client.agent.send({ message: "chatty" }, { timeoutMs: 3_000 });
    assert.equal(chatty.content, ".......");
    assert.ok(Date.now() - started > 3_000, "the run lasted longer than its timeout");

    await assert.rejects(
      client.agent.send({ sessionId: "t:silent", message: "silent" }, { timeoutMs: 150 }).result,
      isCode(ClientErrorCode.Timeout),
    );
    await within(
      (async () => {
        while (fake.framesOf("agent.cancel").length === 0) await new Promise((r) => setImmediate(r));
      })(),
      60_000,
      "agent.cancel after the timeout",
    );
    assert.deepEqual(fake.framesOf("agent.cancel")[0].frame.params, { sessionId: "t:silent" });
  });

  it("aborting before the request was sent never sends it, nor agent.cancel", async () => {
    const { fake, client } = await setup(() => false);
    const controller = new AbortController();
    const run = client.agent.send({ message: "never" }, { signal: controller.signal });
    controller.abort(new Error("changed my mind"));
    await assert.rejects(run.result, (error) => isCode(ClientErrorCode.Aborted)(error) && error.cause.message === "changed my mind");
    await client.connect();
    await client.system.info();
    assert.equal(fake.framesOf("agent.send").length, 0);
    assert.equal(fake.framesOf("agent.cancel").length, 0);
    const already = AbortSignal.abort();
    await assert.rejects(client.call("system.info", {}, { signal: already }), isCode(ClientErrorCode.Aborted));
  });
});

describe("resuming agent turns (decision resumable-runs)", () => {
  it("a dropped agent.send rejoins its turn with agent.attach after the last runSeq; each event once", async () => {
    let dropped = false;
    const { fake, client } = await setup((frame, socket) => {
      if (frame.method === "agent.send") {
        const frameOf = (seq, text) =>
          socket.send(JSON.stringify({ id: frame.id, event: "content", data: { text }, seq, runId: "run_x", runSeq: seq }));
        frameOf(1, "Hello ");
        frameOf(2, "wor");
        return true; // the connection drops before the rest
      }
      if (frame.method === "agent.attach") {
        // Replays from runSeq 2 (one the client already has), then the rest and the reply.
        const ev = (seq, event, data) => socket.send(JSON.stringify({ id: frame.id, event, data, seq, runId: "run_x", runSeq: seq }));
        ev(2, "content", { text: "wor" });
        ev(3, "content", { text: "ld" });
        ev(4, "done", { content: "Hello world" });
        reply(socket, frame.id, { content: "Hello world", usage: { inputTokens: 1, outputTokens: 2 }, sessionId: "t:1", runId: "run_x" });
        return true;
      }
      return false;
    });
    const run = client.agent.send({ sessionId: "t:1", message: "hi" });
    const seen = [];
    let text = "";
    for await (const ev of run.events) {
      seen.push(ev.runSeq);
      if (ev.event === "content") text += ev.data.text;
      if (ev.runSeq === 2 && !dropped) {
        dropped = true;
        fake.dropAll();
      }
    }
    const result = await run.result;
    assert.equal(text, result.content);
    assert.deepEqual(seen, [1, 2, 3, 4]);
    const [send] = fake.framesOf("agent.send");
    assert.equal(typeof send.frame.params.idempotencyKey, "string", "sends carry a key by default");
    const [attach] = fake.framesOf("agent.attach");
    assert.deepEqual(attach.frame.params, { sessionId: "t:1", runId: "run_x", afterSeq: 2 });
    assert.equal(fake.framesOf("agent.send").length, 1, "the send itself was written once");
  });
});
