// Runs the real flynn-gateway daemon on 127.0.0.1 for a test: a temp data dir, a config file,
// --port 0 (or a given port), and the port parsed from its `listening on ws://127.0.0.1:PORT/` line.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gatewayBinary } from "./paths.mjs";

// Its base64 has "/" and "=" padding, so the browser form must really be base64url without padding.
export const TOKEN = "test-token>?~";
const STARTUP_TIMEOUT_MS = 20_000;
const running = new Set();

process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** A fresh temp directory, removed with `removeDir`. */
export function tempDir(prefix = "flynn-ts-") {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Starts the daemon. `toml` is appended to a config that sets the token; `dir` (default: a new
 * temp dir) holds config.toml and data/. Resolves once it listens.
 */
export async function startGateway({ token = TOKEN, toml = "", port = 0, dir = tempDir() } = {}) {
  const dataDir = join(dir, "data");
  const configPath = join(dir, "config.toml");
  const tokenLine = token == null ? "" : `token = ${JSON.stringify(token)}\n`;
  writeFileSync(configPath, `[server]\n${tokenLine}${toml}\n`);
  const child = spawn(gatewayBinary(), ["--config", configPath, "--port", String(port), "--data-dir", dataDir], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, NO_COLOR: "1", RUST_LOG: process.env.RUST_LOG ?? "info" },
  });
  running.add(child);
  const exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  let stderr = "";
  const listening = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`flynn-gateway did not report its port within ${STARTUP_TIMEOUT_MS} ms; stderr:\n${stderr}`));
    }, STARTUP_TIMEOUT_MS);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
      const match = /listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`flynn-gateway exited (code ${code}, signal ${signal}) before listening; stderr:\n${stderr}`));
    });
  });
  return {
    port: listening,
    url: `ws://127.0.0.1:${listening}/`,
    httpUrl: `http://127.0.0.1:${listening}/`,
    dir,
    dataDir,
    token,
    child,
    exited,
    stderr: () => stderr,
    /** Stops the daemon with `signal` (SIGTERM: graceful) and waits for it to exit. */
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
