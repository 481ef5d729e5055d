// Runs the protocol document's example client (flynn-client.js, the `FlynnClient` class copied
// verbatim) against the real daemon: spawns the flynn-gateway binary on a free port with a temp
// data directory, connects, and calls systemInfo() and listSessions().
//
// The binary: $FLYNN_GATEWAY_BIN (the Rust wrapper test transport_node_client.rs sets it), else
// target/debug/flynn-gateway of this workspace (`cargo build -p flynn-gateway` first).
// Run: `npm ci && npm test` in this folder, or `cargo test -p flynn-gateway --test it transport_node_client`.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { FlynnClient } = require('./flynn-client');

const BINARY =
  process.env.FLYNN_GATEWAY_BIN ||
  path.resolve(__dirname, '..', '..', '..', '..', 'target', 'debug', 'flynn-gateway');

// The class's 30 s request timers are never cleared after a reply; unref them so they do not
// keep this process alive once the tests are done. The class itself is untouched.
const realSetTimeout = global.setTimeout;
global.setTimeout = (fn, ms, ...args) => {
  const timer = realSetTimeout(fn, ms, ...args);
  if (timer && typeof timer.unref === 'function') timer.unref();
  return timer;
};

const gateways = [];
after(async () => {
  await Promise.all(gateways.map(stopGateway));
});

/** Spawns the daemon with --port 0 and resolves with its URL once it logs its port. */
function startGateway(env = {}) {
  assert.ok(fs.existsSync(BINARY), `no daemon binary at ${BINARY}: run cargo build -p flynn-gateway`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flynn-node-example-'));
  const childEnv = { ...process.env, NO_COLOR: '1', ...env };
  for (const name of ['FLYNN_CONFIG', 'FLYNN_PORT', 'FLYNN_BIND', 'FLYNN_DATA_DIR', 'RUST_LOG']) {
    delete childEnv[name];
  }
  if (!('FLYNN_SERVER_TOKEN' in env)) delete childEnv.FLYNN_SERVER_TOKEN;
  const child = spawn(BINARY, ['--port', '0', '--data-dir', dataDir], {
    env: childEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const gateway = { child, dataDir, exited: new Promise((r) => child.once('exit', r)) };
  gateways.push(gateway);
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = realSetTimeout(() => reject(new Error(`no listening line within 20 s:\n${log}`)), 20000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const match = /listening on ws:\/\/(127\.0\.0\.1:\d+)\//.exec(log);
      if (match && !gateway.url) {
        clearTimeout(timer);
        gateway.url = `ws://${match[1]}/`;
        resolve(gateway);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`flynn-gateway exited (${code}) before listening:\n${log}`));
    });
  });
}

async function stopGateway(gateway) {
  if (gateway.child.exitCode === null) gateway.child.kill('SIGTERM');
  await gateway.exited;
  fs.rmSync(gateway.dataDir, { recursive: true, force: true });
}

/**
 * The document's usage sets `client.onopen`, which the class never calls; wait for the
 * socket's own 'open' event instead.
 */
function connected(client) {
  client.connect();
  return new Promise((resolve, reject) => {
    client.ws.once('open', resolve);
    client.ws.once('error', reject);
  });
}

test('FlynnClient from the protocol document: systemInfo() and listSessions()', async () => {
  const gateway = await startGateway();
  const client = new FlynnClient(gateway.url);
  await connected(client);

  const info = await client.systemInfo();
  assert.equal(typeof info.version, 'string');
  assert.ok(info.version.length > 0);
  assert.equal(typeof info.uptime, 'number');
  assert.equal(info.connections, 1);
  assert.match(info.sessionId, /^ws:/);

  const list = await client.listSessions();
  assert.ok(Array.isArray(list.sessions), JSON.stringify(list));
  assert.equal(typeof list.total, 'number');
  assert.ok(
    list.sessions.some((s) => s.id === info.sessionId),
    `the client's own live session is listed: ${JSON.stringify(list)}`,
  );

  // Errors come back as rejected promises carrying the code, as the class intends.
  await assert.rejects(client.sendRequest('no.such.method'), (err) => err.code === -3);

  client.ws.close();
});

test('FlynnClient with a token sends it as the Authorization header', async () => {
  const token = 'node-example-token-0123';
  const gateway = await startGateway({ FLYNN_SERVER_TOKEN: token });

  const client = new FlynnClient(gateway.url, token);
  await connected(client);
  const info = await client.systemInfo();
  assert.equal(typeof info.version, 'string');
  const list = await client.listSessions();
  assert.ok(Array.isArray(list.sessions));
  client.ws.close();

  // A wrong token: the gateway sends one -5 error frame and closes with 1008.
  const wrong = new FlynnClient(gateway.url, 'not-the-token-0123');
  const frames = [];
  const closed = new Promise((resolve) => {
    wrong.connect();
    wrong.ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    wrong.ws.once('close', (code) => resolve(code));
  });
  assert.equal(await closed, 1008);
  assert.equal(frames.length, 1, JSON.stringify(frames));
  assert.equal(frames[0].error.code, -5);
});
