// Test support: the real daemon (clients/typescript's helper: temp config, --port 0), fake
// systemctl/docker/journalctl/ollama printing runtime/ops's recorded fixtures and recording their
// arguments, a raw JSON-RPC connection for seeding data, Chromium (Debian's, via playwright-core)
// and axe-core.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import WebSocket from "ws";
export { startGateway, tempDir, removeDir, TOKEN } from "../../clients/typescript/test/support/gateway.mjs";

const require = createRequire(import.meta.url);
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = resolve(ROOT, "..");
export const SHOTS = join(REPO, "target", "dashboard-screenshots");
const FIXTURES = join(REPO, "runtime", "ops", "tests", "fixtures");

/**
 * `FLYNN_DASHBOARD_DIR=dist` serves the files of dashboard/dist/ instead of the binary's
 * embedded copy (for working on the dashboard without rebuilding the daemon).
 */
export function dashboardToml() {
  const dir = process.env.FLYNN_DASHBOARD_DIR;
  return dir ? `dashboard_dir = ${JSON.stringify(resolve(ROOT, dir))}\n` : "";
}

const COMPOSE = `name: flynn
services:
  flynn:
    image: flynn:latest
  whisper-server:
    image: ghcr.io/ggerganov/whisper.cpp:main-cuda
    container_name: flynn-whisper-server-1
    profiles: ["voice"]
  brave-search:
    image: ghcr.io/example/brave-search-proxy:latest
    container_name: brave-search
    profiles: [search]
  searxng:
    image: searxng/searxng:latest
    container_name: searxng
    profiles: [search]
  redis-cache:
    image: redis:7
`;

/** Writes the fake tools into `dir/bin` and returns the TOML sections that use them. */
export function fakeOps(dir) {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  const fx = (p) => `'${join(FIXTURES, p)}'`;
  const tool = (name, body) => {
    const path = join(bin, name);
    writeFileSync(path, `#!/bin/sh\necho "$*" >> '${join(dir, `${name}.calls`)}'\nSTATE='${dir}'\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  };
  const systemctl = tool(
    "systemctl",
    `case "$2" in
show) case "$3" in
  ollama.service) cat ${fx("systemctl/show-ollama-running.txt")} ;;
  llama-server.service) cat ${fx("systemctl/show-llama-server-failed.txt")} ;;
  *) exit 2 ;;
  esac ;;
start|restart|stop) : ;;
*) exit 2 ;;
esac`,
  );
  const docker = tool(
    "docker",
    `case "$*" in
*' ps --all --format json') cat ${fx("docker/compose-ps.ndjson")} ;;
'logs '*flynn-whisper-server-1) cat ${fx("docker/logs-whisper.stdout")}; cat ${fx("docker/logs-whisper.stderr")} >&2 ;;
'logs '*) : ;;
*) : ;;
esac`,
  );
  const journalctl = tool(
    "journalctl",
    `case "$3" in
ollama.service) cat ${fx("journalctl/ollama.json")} ;;
llama-server.service) cat ${fx("journalctl/llama-server.json")} ;;
esac`,
  );
  const ollama = tool("ollama", "echo 'pulling manifest'; echo success");
  const compose = join(dir, "docker-compose.yml");
  writeFileSync(compose, COMPOSE);
  return `
[ops]
sampler_interval_secs = 3600
command_timeout_secs = 10

[[ops.local_backends]]
provider = "ollama"
models = ["llama3.2:3b"]

[[ops.local_backends]]
provider = "llamacpp"

[ops.docker]
compose_file = ${JSON.stringify(compose)}

[ops.binaries]
systemctl = ${JSON.stringify(systemctl)}
journalctl = ${JSON.stringify(journalctl)}
docker = ${JSON.stringify(docker)}
ollama = ${JSON.stringify(ollama)}
`;
}

/** The arguments each call of fake `name` got, one string per call. */
export function calls(dir, name) {
  try {
    return readFileSync(join(dir, `${name}.calls`), "utf8").trim().split("\n");
  } catch {
    return [];
  }
}

/** A raw JSON-RPC connection (token as a header) for seeding data and checking outcomes; it records the event frames it receives. */
export async function rpc(url, token) {
  const ws = new WebSocket(url, ["flynn.v1"], token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  await new Promise((res, rej) => {
    ws.once("open", res);
    ws.once("error", rej);
  });
  let next = 1;
  const waiting = new Map();
  const events = [];
  ws.on("message", (raw) => {
    const frame = JSON.parse(String(raw));
    if (frame.event !== undefined) events.push(frame);
    else if (frame.id !== undefined && waiting.has(frame.id)) {
      const { resolve: res, reject: rej } = waiting.get(frame.id);
      waiting.delete(frame.id);
      if (frame.error) rej(Object.assign(new Error(frame.error.message), { code: frame.error.code }));
      else res(frame.result);
    }
  });
  return {
    /** Every event frame received, in order. */
    events,
    call(method, params = {}) {
      const id = next++;
      ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
      return new Promise((res, rej) => waiting.set(id, { resolve: res, reject: rej }));
    },
    close: () => ws.close(),
  };
}

/** Debian's Chromium through playwright-core (never a downloaded browser), fresh profile. */
export async function launch(userDataDir) {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
  });
}

const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe-core in the page (injected through the DevTools protocol, so the page's CSP does not
 * apply to it) and returns the serious and critical violations.
 */
export async function axe(page) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  return result.filter((v) => v.impact === "serious" || v.impact === "critical");
}

export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}
