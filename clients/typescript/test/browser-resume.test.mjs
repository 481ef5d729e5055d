// The TypeScript client's resume (decision resumable-runs) in Debian's Chromium, driven by
// playwright-core: the page loads the built browser bundle and streams agent.send turns through a
// proxy (test/support/cutting-proxy.mjs, in this Node process) that cuts every connection at a
// random byte. The browser's own WebSocket sees the drops; the client reconnects and rejoins each
// turn, so per turn the concatenated content equals the final reply and no runSeq comes twice,
// and the daemon stored each message exactly once.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { chromium } from "playwright-core";
import { FlynnClient } from "@flynn/gateway-client";
import { BUNDLE } from "./support/paths.mjs";
import { removeDir, startGateway, tempDir, TOKEN } from "./support/gateway.mjs";
import { cutSeed, rng, startCuttingProxy } from "./support/cutting-proxy.mjs";
import { within } from "./support/wait.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** Serves an empty page and the client bundle on 127.0.0.1 (the page's origin). */
function startPageServer() {
  const bundle = readFileSync(BUNDLE);
  const server = createServer((req, res) => {
    if (req.url === "/client.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(bundle);
    } else {
      res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>resume</title>");
    }
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((done) => server.close(() => done())) }));
  });
}

/** Runs in the page: `turns` streamed sends on one client; per turn its content, reply and runSeqs. */
async function runTurnsInPage({ url, token, sessionId, turns }) {
  const { FlynnClient } = await import("/client.js");
  const client = new FlynnClient({
    url,
    token,
    requestTimeoutMs: 20_000,
    reconnect: { initialDelayMs: 10, maxDelayMs: 50, jitter: 0, maxAttempts: 1000 },
  });
  let opens = 0;
  let inTurn = false;
  let cutsInTurns = 0;
  client.on("open", () => (opens += 1));
  client.on("reconnecting", () => inTurn && (cutsInTurns += 1));
  const out = [];
  try {
    for (let turn = 0; turn < turns; turn++) {
      const message = `turn ${turn}: one two three four five six seven eight nine ten eleven [[delay:2]]`;
      inTurn = true;
      const run = client.agent.send({ sessionId, message });
      const seqs = [];
      let content = "";
      for await (const ev of run.events) {
        if (typeof ev.runSeq === "number") seqs.push(ev.runSeq);
        if (ev.event === "content" && ev.data.transient !== true) content += ev.data.text;
      }
      const result = await run.result;
      inTurn = false;
      out.push({ content, reply: result.content, seqs });
    }
  } catch (error) {
    out.push({ error: `${error?.name}: ${error?.code ?? ""} ${error?.message}` });
  } finally {
    await client.close();
  }
  return { out, opens, cutsInTurns };
}

describe("resume in Chromium", () => {
  let gateway;
  let profile;
  let context;
  let pages;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's Chromium with \`apt-get install -y chromium\``);
    // The page (one port) talks to the proxy (another): both are 127.0.0.1, any port.
    gateway = await startGateway({ toml: 'allowed_hosts = ["127.0.0.1"]\n' });
    pages = await startPageServer();
    profile = tempDir("flynn-ts-chromium-");
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, headless: true });
  });

  after(async () => {
    await context?.close();
    await pages?.close();
    await gateway?.stop();
    if (gateway) removeDir(gateway.dir);
    if (profile) removeDir(profile);
  });

  it("agent.send streams resume across cut connections: each event once, content equals the reply, one turn per send", async () => {
    const seed = cutSeed();
    const below = rng(seed);
    let connections = 0;
    // Every connection is cut somewhere in its first 3 kB (the handshake, a turn or two). The
    // first one gets past its handshake (the 101, ~200 bytes, and the system.info reply, ~190):
    // a first connect that never opens is reported to the caller, not retried (by design:
    // "is the gateway running there?"), so cutting it would test that instead of resuming.
    // Reconnections may be cut anywhere, the handshake included: those attempts are retried.
    const proxy = await startCuttingProxy(gateway.port, () => {
      connections += 1;
      return connections === 1 ? 600 + below(2400) : 200 + below(2800);
    });
    try {
      const page = await context.newPage();
      const problems = [];
      page.on("pageerror", (error) => problems.push(error.message));
      await page.goto(pages.url);
      const sessionId = "tsclient:browser-resume";
      const turns = 30;
      const { out, opens, cutsInTurns } = await within(
        page.evaluate(runTurnsInPage, { url: `ws://127.0.0.1:${proxy.port}/`, token: TOKEN, sessionId, turns }),
        120_000,
        "the page's turns",
      );
      assert.equal(out.length, turns, `every turn answered (seed ${seed}): ${JSON.stringify(out.at(-1))}`);
      out.forEach(({ content, reply, seqs }, turn) => {
        assert.equal(content, reply, `turn ${turn}: content equals the reply (seed ${seed})`);
        assert.deepEqual(seqs, seqs.map((_, i) => i + 1), `turn ${turn}: each runSeq once and in order (seed ${seed})`);
      });
      assert.ok(cutsInTurns >= turns / 4, `connections were cut during turns (${cutsInTurns} for ${turns} turns, seed ${seed})`);
      console.log(`${turns} turns in Chromium, ${cutsInTurns} cuts during turns, ${opens} connections opened (${connections} accepted by the proxy)`);
      assert.deepEqual(problems, []);
      await page.close();

      // Checked on a direct connection: the proxy would cut this reply too.
      const direct = new FlynnClient({ url: gateway.url, token: TOKEN, WebSocket, reconnect: false });
      try {
        const history = await within(direct.sessions.get({ sessionId, historyLimit: 1000 }), 30_000, "sessions.get");
        for (let turn = 0; turn < turns; turn++) {
          const copies = history.history.filter((m) => m.role === "user" && m.content.startsWith(`turn ${turn}:`)).length;
          assert.equal(copies, 1, `turn ${turn} stored ${copies} times (seed ${seed})`);
        }
      } finally {
        await direct.close();
      }
    } finally {
      await proxy.close();
    }
  });
});
