// Pure parts of the client: backoff, the browser token form, frame parsing, option checks.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import WebSocket from "ws";
import {
  backoffDelay,
  bearerSubprotocol,
  ClientErrorCode,
  ErrorCode,
  FlynnClient,
  FlynnError,
  isFlynnError,
  METHOD_NAMES,
} from "@flynn/gateway-client";
import { resolveReconnect } from "../dist/backoff.js";
import { parseFrame } from "../dist/wire.js";
import { ReplayQueue } from "../dist/replay-queue.js";

describe("backoff", () => {
  const policy = resolveReconnect({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 });

  it("doubles from initialDelayMs and caps at maxDelayMs", () => {
    const delays = [1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay(attempt, policy, () => 0));
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
  });

  it("jitter takes up to its fraction off the delay", () => {
    assert.equal(backoffDelay(3, policy, () => 1), 200);
    assert.equal(backoffDelay(3, policy, () => 0.5), 300);
    const samples = Array.from({ length: 200 }, () => backoffDelay(3, policy));
    assert.ok(samples.every((d) => d >= 200 && d <= 400), "every delay within [d*(1-jitter), d]");
    assert.ok(new Set(samples).size > 10, "jitter really varies the delay");
  });

  it("rejects nonsense policies, naming the option", () => {
    assert.throws(() => resolveReconnect({ jitter: 2 }), /reconnect\.jitter/);
    assert.throws(() => resolveReconnect({ initialDelayMs: 500, maxDelayMs: 100 }), /reconnect\.maxDelayMs/);
    assert.throws(() => resolveReconnect({ maxAttempts: 0 }), /reconnect\.maxAttempts/);
  });
});

describe("browser token form", () => {
  it("is flynn.bearer. + base64url(UTF-8) without padding", () => {
    for (const token of ["test-token>?~", "s3cr3t-token?>>", "\u00e9t\u00e9-\u{1F511}", "a"]) {
      const expected = "flynn.bearer." + Buffer.from(token, "utf8").toString("base64url");
      assert.equal(bearerSubprotocol(token), expected);
      assert.doesNotMatch(bearerSubprotocol(token), /[+/=]/);
    }
  });
});

describe("token transport default", () => {
  it("is header for an injected constructor such as ws", () => {
    const client = new FlynnClient({ url: "ws://127.0.0.1:1/", WebSocket });
    assert.equal(client.tokenTransport, "header");
  });

  it("is subprotocol for the host's own WebSocket (the browser case)", () => {
    const saved = globalThis.WebSocket;
    globalThis.WebSocket = WebSocket;
    try {
      assert.equal(new FlynnClient({ url: "ws://127.0.0.1:1/" }).tokenTransport, "subprotocol");
      assert.equal(new FlynnClient({ url: "ws://127.0.0.1:1/", WebSocket }).tokenTransport, "subprotocol");
      assert.equal(
        new FlynnClient({ url: "ws://127.0.0.1:1/", WebSocket, tokenTransport: "header" }).tokenTransport,
        "header",
      );
    } finally {
      globalThis.WebSocket = saved;
    }
  });

  it("without any WebSocket, the constructor says to inject one", () => {
    const saved = globalThis.WebSocket;
    delete globalThis.WebSocket;
    try {
      assert.throws(() => new FlynnClient({ url: "ws://127.0.0.1:1/" }), /options\.WebSocket/);
    } finally {
      if (saved !== undefined) globalThis.WebSocket = saved;
    }
  });

  it("rejects a URL that is not ws:// or wss://", () => {
    assert.throws(() => new FlynnClient({ url: "http://127.0.0.1:1/", WebSocket }), /ws:\/\/ or wss:\/\//);
  });
});

describe("frames", () => {
  it("reads replies, errors (also with id null) and events", () => {
    assert.deepEqual(parseFrame('{"id":1,"result":{"ok":true}}'), { kind: "response", response: { id: 1, result: { ok: true } } });
    assert.deepEqual(parseFrame('{"id":null,"error":{"code":-5,"message":"no"}}'), {
      kind: "response",
      response: { id: null, error: { code: -5, message: "no" } },
    });
    const event = parseFrame('{"id":"a","event":"content","data":{"text":"x"},"seq":3,"extra":1}');
    assert.equal(event.kind, "event");
    assert.equal(event.event.seq, 3);
  });

  it("names what is wrong with a bad frame", () => {
    assert.match(parseFrame("nope").reason, /not JSON/);
    assert.match(parseFrame("[1]").reason, /not a JSON object/);
    assert.match(parseFrame('{"id":1,"error":{"message":"x"}}').reason, /numeric code/);
    assert.match(parseFrame('{"id":1}').reason, /neither a reply nor an event/);
  });
});

describe("FlynnError", () => {
  it("carries code, name and data, and tells protocol from client errors", () => {
    const error = new FlynnError(ErrorCode.AgentBusy, "busy", { data: { queue: { code: "overflow" } }, method: "agent.send", requestId: 7 });
    assert.equal(error.codeName, "AgentBusy");
    assert.equal(error.isProtocolError(), true);
    assert.deepEqual(error.data, { queue: { code: "overflow" } });
    assert.ok(isFlynnError(error));
    const lost = new FlynnError(ClientErrorCode.ConnectionLost, "lost");
    assert.equal(lost.isProtocolError(), false);
    assert.equal(lost.codeName, "connection_lost");
    assert.equal(new FlynnError(ErrorCode.AuthFailed, "x").isAuthError(), true);
  });
});

describe("replay queue", () => {
  it("replays from the start for every iteration and throws the failure at the end", async () => {
    const queue = new ReplayQueue();
    queue.push(1);
    const first = [];
    const consumer = (async () => {
      for await (const item of queue) first.push(item);
    })();
    queue.push(2);
    queue.fail(new Error("boom"));
    await assert.rejects(consumer, /boom/);
    assert.deepEqual(first, [1, 2]);
    const second = [];
    await assert.rejects(async () => {
      for await (const item of queue) second.push(item);
    }, /boom/);
    assert.deepEqual(second, [1, 2]);
  });
});

describe("method groups", () => {
  it("every spec method is reachable as client.<group>.<method>", () => {
    const client = new FlynnClient({ url: "ws://127.0.0.1:1/", WebSocket });
    for (const name of METHOD_NAMES) {
      const path = name.split(".");
      let target = client;
      for (const part of path) target = target[part];
      assert.equal(typeof target, "function", `${name} is a function`);
    }
  });
});

describe("package", () => {
  it("has zero runtime dependencies: no dependencies in package.json, only relative imports in dist/", async () => {
    const { readFileSync, readdirSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { PACKAGE_ROOT } = await import("./support/paths.mjs");
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8"));
    assert.equal(pkg.dependencies, undefined);
    assert.equal(pkg.peerDependencies, undefined);
    assert.equal(pkg.type, "module");
    const dist = join(PACKAGE_ROOT, "dist");
    const files = readdirSync(dist, { recursive: true }).filter((f) => String(f).endsWith(".js") && !String(f).startsWith("browser"));
    assert.ok(files.length > 5);
    for (const file of files) {
      const text = readFileSync(join(dist, String(file)), "utf8");
      for (const match of text.matchAll(/^\s*(?:import|export)[^"']*from\s*["']([^"']+)["']/gm)) {
        assert.ok(match[1].startsWith("./") || match[1].startsWith("../"), `${file} imports ${match[1]}`);
      }
    }
  });
});
