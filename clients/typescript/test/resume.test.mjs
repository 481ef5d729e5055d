// Streams survive connections cut at random points (decision resumable-runs). A TCP proxy between
// the client and the real daemon forwards the daemon's bytes up to a random budget per
// connection, then drops both sides. The client reconnects by itself and its `agent.send` streams
// rejoin their turns (agent.attach after the last runSeq, or the same keyed send): the consumer
// sees each event once, the concatenated content equals the final reply, and the daemon stored
// exactly one turn per send.
import assert from "node:assert/strict";
import { after, it } from "node:test";
import WebSocket from "ws";
import { FlynnClient } from "@flynn/gateway-client";
import { removeDir, startGateway, TOKEN } from "./support/gateway.mjs";
import { within } from "./support/wait.mjs";
import { cutSeed, rng, startCuttingProxy } from "./support/cutting-proxy.mjs";

const cleanup = [];
after(async () => {
  while (cleanup.length > 0) await cleanup.pop()();
});

it("agent.send streams resume across cut connections: each event once, content equals the reply, one turn per send", async () => {
  const gateway = await startGateway({ toml: 'allowed_hosts = ["127.0.0.1"]\n' });
  cleanup.push(() => removeDir(gateway.dir));
  cleanup.push(() => gateway.stop());
  const seed = cutSeed();
  const below = rng(seed);
  let connections = 0;
  // Every connection is cut somewhere in its first 3 kB (the handshake, a turn or two).
  const proxy = await startCuttingProxy(gateway.port, () => {
    connections += 1;
    return 200 + below(2800);
  });
  cleanup.push(() => proxy.close());

  const client = new FlynnClient({
    url: `ws://127.0.0.1:${proxy.port}/`,
    token: TOKEN,
    WebSocket,
    requestTimeoutMs: 20_000,
    reconnect: { initialDelayMs: 10, maxDelayMs: 50, jitter: 0, maxAttempts: 1000 },
  });
  cleanup.push(() => client.close());

  const sessionId = "tsclient:resume";
  const turns = 20;
  for (let turn = 0; turn < turns; turn++) {
    const message = `turn ${turn}: one two three four five six seven eight nine ten eleven [[delay:2]]`;
    const run = client.agent.send({ sessionId, message });
    const seqs = [];
    let content = "";
    for await (const ev of run.events) {
      if (typeof ev.runSeq === "number") seqs.push(ev.runSeq);
      if (ev.event === "content" && ev.data.transient !== true) content += ev.data.text;
    }
    const result = await within(run.result, 30_000, `turn ${turn}`);
    assert.equal(content, result.content, `turn ${turn} (seed ${seed})`);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i + 1),
      `turn ${turn}: each event once and in order (seed ${seed})`,
    );
  }
  assert.ok(connections > turns / 2, `the proxy cut connections (${connections} for ${turns} turns)`);
  console.log(`${turns} turns over ${connections} connections`);

  // Checked on a direct connection: the proxy would cut this reply too.
  const direct = new FlynnClient({ url: gateway.url, token: TOKEN, WebSocket, reconnect: false });
  cleanup.push(() => direct.close());
  const history = await within(direct.sessions.get({ sessionId, historyLimit: 1000 }), 30_000, "sessions.get");
  for (let turn = 0; turn < turns; turn++) {
    const copies = history.history.filter((m) => m.role === "user" && m.content.startsWith(`turn ${turn}:`)).length;
    assert.equal(copies, 1, `turn ${turn} stored ${copies} times (seed ${seed})`);
  }
});
