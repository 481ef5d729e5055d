// The client against the real flynn-gateway daemon: every method group, streaming, abort,
// tool approval, protocol errors, auth failures and an intended disconnect.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { ClientErrorCode, ErrorCode, FlynnClient, FlynnError, SPEC_VERSION } from "@flynn/gateway-client";
import { removeDir, startGateway, TOKEN } from "./support/gateway.mjs";
import { nextEvent } from "./support/wait.mjs";

let gateway;
const clients = [];

function connect(options = {}) {
  const client = new FlynnClient({ url: gateway.url, token: TOKEN, WebSocket, requestTimeoutMs: 10_000, ...options });
  clients.push(client);
  return client;
}

const isCode = (code) => (error) => error instanceof FlynnError && error.code === code;

before(async () => {
  gateway = await startGateway({ toml: "[server.nodes.push]\nenabled = true\n" });
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await gateway.stop();
  removeDir(gateway.dir);
});

describe("method groups", () => {
  it("system", async () => {
    const client = connect();
    const info = await client.system.info();
    assert.equal(typeof info.version, "string");
    assert.match(info.sessionId, /^ws:/);
    assert.equal(client.info.connectionId, info.connectionId, "the handshake's info is kept");
    const caps = await client.system.capabilities();
    assert.equal(caps.protocol.version, 1);
    assert.equal(caps.protocol.specVersion, SPEC_VERSION);
    assert.ok(Array.isArray((await client.system.presence({ limit: 5 })).presence));
    assert.equal(typeof (await client.system.sessionAnalytics({ days: 7 })).totalMessages, "number");
    assert.ok(Array.isArray((await client.system.contextUsage()).sessions));
    assert.ok(Array.isArray((await client.system.localBackends()).backends));
    assert.ok(Array.isArray((await client.system.dockerDependencies()).dependencies));
    const sources = await client.system.observabilitySources();
    assert.ok(Array.isArray(sources.sources));
    assert.ok(Array.isArray((await client.system.observabilitySeries({ windowMinutes: 5 })).series));
    assert.ok(Array.isArray((await client.system.nodes()).nodes));
    assert.ok(Array.isArray((await client.system.location()).locations));
    await assert.rejects(client.system.serviceLogs({ sourceId: "no-such-source" }), isCode(ErrorCode.InvalidRequest));
    await assert.rejects(
      client.system.dockerDependencyControl({ dependency: "no-such-dependency", action: "restart" }),
      isCode(ErrorCode.InvalidRequest),
    );
    await assert.rejects(
      client.system.localBackendControl({ backend: "no-such-backend", action: "start" }),
      isCode(ErrorCode.InvalidRequest),
    );
  });

  it("system.disconnect closes without reconnecting; the next call connects again", async () => {
    const client = connect({ reconnect: { initialDelayMs: 10, maxDelayMs: 20, jitter: 0 } });
    const first = await client.connect();
    let reconnecting = 0;
    client.on("reconnecting", () => reconnecting++);
    const closed = nextEvent(client, "close");
    assert.deepEqual(await client.system.disconnect(), { success: true });
    // Made before the close arrives: held back from the closing connection, sent on a new one.
    const second = client.system.info();
    assert.equal((await closed).willReconnect, false);
    assert.notEqual((await second).connectionId, first.connectionId);
    const closedAgain = nextEvent(client, "close");
    await client.system.disconnect();
    await closedAgain;
    assert.equal(client.state, "idle");
    assert.notEqual((await client.system.info()).connectionId, (await second).connectionId);
    assert.equal(reconnecting, 0);
  });

  it("sessions", async () => {
    const client = connect();
    const created = await client.sessions.create({ sessionId: "tsclient:sessions" });
    assert.deepEqual(created, { created: true, sessionId: "tsclient:sessions" });
    await client.agent.send({ sessionId: "tsclient:sessions", message: "remember me" });
    const list = await client.sessions.list({ frontend: "tsclient" });
    assert.equal(list.total, 1);
    assert.equal(list.sessions[0].id, "tsclient:sessions");
    const got = await client.sessions.get({ sessionId: "tsclient:sessions" });
    assert.deepEqual(
      got.history.map((m) => [m.role, m.content]),
      [
        ["user", "remember me"],
        ["assistant", "You said: remember me"],
      ],
    );
    assert.deepEqual(await client.sessions.delete({ sessionId: "tsclient:sessions" }), { success: true });
    await assert.rejects(client.sessions.get({ sessionId: "tsclient:never" }), (error) => {
      assert.ok(isCode(ErrorCode.SessionNotFound)(error));
      assert.equal(error.codeName, "SessionNotFound");
      assert.deepEqual(error.data, { sessionId: "tsclient:never" });
      assert.equal(error.method, "sessions.get");
      return true;
    });
  });

  it(
    "a deleted session is gone: not listed, sessions.get is SessionNotFound",
    async () => {
      const client = connect();
      await client.sessions.create({ sessionId: "tsclient:deleted" });
      await client.sessions.delete({ sessionId: "tsclient:deleted" });
      assert.match((await client.system.info()).sessionId, /^ws:/, "the connection fell back to its default session");
      assert.ok(!(await client.sessions.list()).sessions.some((s) => s.id === "tsclient:deleted"), "not listed");
      await assert.rejects(client.sessions.get({ sessionId: "tsclient:deleted" }), isCode(ErrorCode.SessionNotFound));
    },
  );

  it("agent: cancel on an idle session, tool approval round trip", async () => {
    const client = connect();
    assert.deepEqual(await client.agent.cancel({ sessionId: "tsclient:idle" }), { cancelled: false, rejected: 0 });
    await client.sessions.create({ sessionId: "tsclient:approval" });
    assert.deepEqual(await client.agent.setToolUseCallback({ sessionId: "tsclient:approval", enabled: true }), { success: true });
    const seen = [];
    const run = client.agent.send(
      { sessionId: "tsclient:approval", message: '[[tool:shell.exec {"command":"echo approved-by-test"}]]' },
      {
        onEvent: (ev) => {
          seen.push(ev.event);
          if (ev.event === "tool_approval") {
            assert.equal(ev.data.tool, "shell.exec");
            client.agent.approveTool({ approvalId: ev.data.approvalId, approved: true }).then((r) => seen.push(`accepted:${r.accepted}`));
          }
        },
      },
    );
    const result = await run;
    assert.match(result.content, /approved-by-test/);
    const toolEnd = (await collect(run)).find((ev) => ev.event === "tool_end");
    assert.equal(toolEnd.data.result.success, true);
    assert.ok(seen.indexOf("tool_approval") < seen.indexOf("tool_start"), `approval before the tool ran: ${seen}`);
    assert.ok(seen.includes("accepted:true"));
    assert.deepEqual(await client.agent.approveTool({ approvalId: "no-such-approval", approved: false }), { accepted: false });
  });

  it("node", async () => {
    const client = connect();
    const reg = await client.node.register({ nodeId: "tsclient-phone", role: "companion", protocolVersion: 1, capabilities: ["location"] });
    assert.equal(reg.registered, true);
    assert.equal(reg.protocol.negotiatedVersion, 1);
    assert.equal((await client.node.capabilities.get()).registered, true);
    const set = await client.node.location.set({ latitude: 48.85, longitude: 2.35, accuracyMeters: 10 });
    assert.equal(set.location.latitude, 48.85);
    assert.equal((await client.node.location.get()).location.longitude, 2.35);
    assert.equal((await client.node.status.set({ platform: "android", batteryPct: 80 })).status.platform, "android");
    const push = await client.node.push_token.set({ provider: "fcm", token: "tsclient-push-token-123456" });
    assert.ok(!push.tokenPreview.includes("tsclient-push-token-123456"), "only a masked preview comes back");
    const nodes = await connect().system.nodes();
    assert.ok(nodes.nodes.some((n) => n.nodeId === "tsclient-phone"));
  });

  it("canvas", async () => {
    const client = connect();
    await client.sessions.create({ sessionId: "tsclient:canvas" });
    const put = await client.canvas.put({ sessionId: "tsclient:canvas", artifactId: "a1", type: "note", title: "Note", content: { text: "hi" } });
    assert.equal(put.created, true);
    assert.deepEqual((await client.canvas.get({ sessionId: "tsclient:canvas", artifactId: "a1" })).artifact.content, { text: "hi" });
    await client.canvas.put({ sessionId: "tsclient:canvas", artifactId: "a2", type: "markdown", content: { md: "# x" } });
    assert.equal((await client.canvas.list({ sessionId: "tsclient:canvas" })).artifacts.length, 2);
    assert.deepEqual(await client.canvas.delete({ sessionId: "tsclient:canvas", artifactId: "a1" }), { deleted: true });
    assert.deepEqual(await client.canvas.clear({ sessionId: "tsclient:canvas" }), { deleted: 1 });
    await assert.rejects(client.canvas.get({ sessionId: "tsclient:canvas", artifactId: "a1" }), (e) => isCode(ErrorCode.InvalidRequest)(e) && e.data.path === "params.artifactId");
  });

  it(
    "canvas.* on an unknown session is SessionNotFound",
    async () => {
      const client = connect();
      const sessionId = "tsclient:nope";
      const outcome = (promise) => promise.then(() => "ok", (e) => e.code);
      const outcomes = {
        list: await outcome(client.canvas.list({ sessionId })),
        clear: await outcome(client.canvas.clear({ sessionId })),
        get: await outcome(client.canvas.get({ sessionId, artifactId: "x" })),
        delete: await outcome(client.canvas.delete({ sessionId, artifactId: "x" })),
        put: await outcome(client.canvas.put({ sessionId, artifactId: "x", type: "note", content: {} })),
      };
      const notFound = ErrorCode.SessionNotFound;
      assert.deepEqual(outcomes, { list: notFound, clear: notFound, get: notFound, delete: notFound, put: notFound });
    },
  );

  it("tools", async () => {
    const client = connect();
    const names = (await client.tools.list()).tools.map((t) => t.name);
    assert.ok(names.includes("shell.exec"), names.join(","));
    const run = await client.tools.execute({ tool: "shell.exec", args: { command: "echo from-tools-execute" } });
    assert.equal(run.success, true);
    assert.match(run.output, /from-tools-execute/);
    await assert.rejects(client.tools.execute({ tool: "no.such.tool" }), (e) => isCode(ErrorCode.ToolNotFound)(e) && e.data.tool === "no.such.tool");
  });

  it("config", async () => {
    const client = connect();
    const config = await client.config.get();
    assert.equal(config.server.token, "***", "the token is redacted");
    assert.deepEqual(await client.config.reload(), { success: true });
  });

  it("pairing", async () => {
    const client = connect();
    const code = await client.pairing.generate({ channel: "telegram" });
    assert.match(code.code, /^[A-Z0-9]{6,12}$/);
    assert.ok((await client.pairing.list()).codes.some((c) => c.code === code.code));
  });

  it("rpc", async () => {
    const doc = await connect().rpc.discover();
    assert.equal(doc.info.version, SPEC_VERSION);
    assert.equal(doc.methods.length, 42);
  });

  it("generic call, and protocol errors as FlynnError", async () => {
    const client = connect();
    assert.equal((await client.call("system.info")).version, (await client.system.info()).version);
    await assert.rejects(client.call("sessions.list", { limit: "ten" }), (e) => isCode(ErrorCode.InvalidRequest)(e) && e.data.path === "params.limit");
    await assert.rejects(client.call("no.such.method", {}), (e) => isCode(ErrorCode.MethodNotFound)(e) && e.data.method === "no.such.method");
  });
});

async function collect(run) {
  const events = [];
  try {
    for await (const ev of run.events) events.push(ev);
  } catch {
    // the run's error is asserted through run.result
  }
  return events;
}

describe("streaming agent.send", () => {
  it("delivers content events in order to the callback and the iterator, then the result", async () => {
    const client = connect();
    const timeline = [];
    const run = client.agent.send(
      { sessionId: "tsclient:stream", message: "one two three four five six seven [[delay:20]]" },
      { onEvent: (ev) => timeline.push(`event:${ev.event}`) },
    );
    const iterated = collect(run);
    const result = await run.result;
    timeline.push("result");
    const events = await iterated;
    const content = events.filter((ev) => ev.event === "content");
    assert.ok(content.length >= 3, `streamed in several chunks (${content.length})`);
    assert.equal(content.map((ev) => ev.data.text).join(""), result.content);
    assert.equal(result.content, "You said: one two three four five six seven");
    assert.equal(result.sessionId, "tsclient:stream");
    const seqs = events.map((ev) => ev.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "seq increases");
    assert.equal(events.at(-1).event, "done", "the run's last event is done (events, then done, then the reply)");
    assert.equal(events.at(-1).data.content, result.content);
    assert.deepEqual(timeline.slice(-2), ["event:done", "result"], "the callback saw done before the result settled");
    assert.deepEqual(await collect(run), events, "a second iteration replays the same events");
  });

  it("an AbortSignal mid-run sends agent.cancel and rejects with `aborted`", async () => {
    const client = connect();
    const controller = new AbortController();
    const session = "tsclient:abort";
    let chunks = 0;
    const run = client.agent.send(
      { sessionId: session, message: "[[delay:60000]] [[long:200]]" },
      {
        signal: controller.signal,
        onEvent: (ev) => {
          if (ev.event === "content" && ++chunks === 1) controller.abort("user pressed stop");
        },
      },
    );
    const started = Date.now();
    await assert.rejects(run.result, (error) => {
      assert.ok(isCode(ClientErrorCode.Aborted)(error), String(error));
      assert.equal(error.cause, "user pressed stop");
      assert.match(error.message, /agent\.cancel was sent/);
      return true;
    });
    await assert.rejects(collect2(run), isCode(ClientErrorCode.Aborted), "the iterator throws the same error");
    // The 200-word run at a minute per 3 words would hold the lane over an hour (its next chunk
    // alone a minute); a new turn on the same session answering within 30 s (a liveness bound,
    // not a speed test) proves the gateway really cancelled it.
    const next = await client.agent.send({ sessionId: session, message: "still there?" });
    assert.equal(next.content, "You said: still there?");
    assert.ok(Date.now() - started < 30_000, `the lane was free again after ${Date.now() - started} ms`);
    const history = await client.sessions.get({ sessionId: session });
    assert.ok(!history.history.some((m) => m.role === "assistant" && m.content.split(" ").length > 150), "the long answer never completed");
  });

  it("run.cancel() works like aborting", async () => {
    const client = connect();
    const run = client.agent.send(
      { sessionId: "tsclient:cancel", message: "[[delay:200]] [[long:100]]" },
      { onEvent: () => run.cancel("enough") },
    );
    await assert.rejects(run.result, isCode(ClientErrorCode.Aborted));
    assert.equal((await client.agent.send({ sessionId: "tsclient:cancel", message: "next" })).content, "You said: next");
  });

  it("a failed run rejects with the gateway's error", async () => {
    const client = connect();
    const run = client.agent.send({ sessionId: "tsclient:fail", message: "partial [[fail:model fell over]]" });
    let failure;
    await assert.rejects(run.result, (error) => {
      failure = error;
      return error instanceof FlynnError && error.isProtocolError() && /model fell over/.test(error.message);
    });
    const events = [];
    await assert.rejects(async () => {
      for await (const ev of run.events) events.push(ev);
    }, (error) => error === failure);
    const last = events.at(-1);
    assert.equal(last.event, "error", "an error event precedes the error reply");
    assert.equal(last.data.code, failure.code);
  });
});

async function collect2(run) {
  for await (const _ of run.events) {
    // drain
  }
}

describe("auth", () => {
  it("a wrong token fails with -5 (AuthFailed) and does not reconnect", async () => {
    const client = connect({ token: "wrong-token", reconnect: { initialDelayMs: 10, maxDelayMs: 20, jitter: 0 } });
    let reconnecting = 0;
    client.on("reconnecting", () => reconnecting++);
    const errors = [];
    client.on("error", (e) => errors.push(e.code));
    await assert.rejects(client.connect(), (e) => isCode(ErrorCode.AuthFailed)(e) && e.isAuthError());
    await assert.rejects(client.sessions.list(), isCode(ErrorCode.AuthFailed));
    assert.equal(client.state, "idle");
    assert.equal(reconnecting, 0);
    assert.deepEqual(errors, [ErrorCode.AuthFailed, ErrorCode.AuthFailed]);
  });

  it("a missing token fails with -4 (AuthRequired)", async () => {
    const client = connect({ token: undefined });
    await assert.rejects(client.system.info(), (e) => isCode(ErrorCode.AuthRequired)(e) && e.codeName === "AuthRequired");
  });

  it("the browser form (subprotocol) authenticates too", async () => {
    const client = connect({ tokenTransport: "subprotocol" });
    assert.equal(client.tokenTransport, "subprotocol");
    assert.match((await client.connect()).connectionId, /\S/);
    const wrong = connect({ tokenTransport: "subprotocol", token: "nope" });
    await assert.rejects(wrong.connect(), isCode(ErrorCode.AuthFailed));
  });
});
