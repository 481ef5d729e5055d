// The browser example in Debian's Chromium (never a downloaded browser), driven by playwright-core:
// the daemon serves the page and the bundle from server.dashboard_dir, the page authenticates with
// the subprotocol form, streams agent.send and shows the answer. A screenshot goes to test-output/.
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { BUNDLE, PACKAGE_ROOT, TEST_OUTPUT } from "./support/paths.mjs";
import { removeDir, startGateway, tempDir, TOKEN } from "./support/gateway.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

describe("browser example", () => {
  let gateway;
  let profile;
  let context;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's Chromium with \`apt-get install -y chromium\``);
    const dashboard = tempDir("flynn-ts-dashboard-");
    for (const file of ["index.html", "app.js", "app.css"]) {
      copyFileSync(join(PACKAGE_ROOT, "examples", "browser", file), join(dashboard, file));
    }
    copyFileSync(BUNDLE, join(dashboard, "flynn-gateway-client.min.js"));
    gateway = await startGateway({ toml: `dashboard_dir = ${JSON.stringify(dashboard)}\n` });
    gateway.dashboard = dashboard;
    profile = tempDir("flynn-ts-chromium-");
    // launchPersistentContext passes the fresh profile as --user-data-dir.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: ARGS,
      headless: true,
      viewport: { width: 900, height: 500 },
    });
  });

  after(async () => {
    await context?.close();
    await gateway?.stop();
    if (gateway) {
      removeDir(gateway.dir);
      removeDir(gateway.dashboard);
    }
    if (profile) removeDir(profile);
  });

  it("loads the bundle, authenticates with the subprotocol, streams and shows the answer", async () => {
    const page = await context.newPage();
    const problems = [];
    page.on("pageerror", (error) => problems.push(error.message));
    const sockets = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(`${gateway.httpUrl}index.html#token=${encodeURIComponent(TOKEN)}`);
    const result = page.locator("#result");
    await result.filter({ hasText: /\S/ }).waitFor({ timeout: 15_000 });
    assert.match(await result.textContent(), /^Answer: You said: Hello from the browser \(\d+ tokens\)$/);
    assert.equal(await page.locator("#stream").textContent(), "You said: Hello from the browser", "streamed chunks add up to the answer");
    assert.equal(await page.locator("#status").textContent(), "open");
    assert.equal(await page.locator("#auth").textContent(), "subprotocol");
    assert.deepEqual(sockets, [gateway.url]);
    assert.deepEqual(problems, []);
    mkdirSync(TEST_OUTPUT, { recursive: true });
    await page.screenshot({ path: join(TEST_OUTPUT, "browser-example.png"), fullPage: true });
    await page.close();
  });

  it("shows the gateway's -5 when the token is wrong", async () => {
    const page = await context.newPage();
    await page.goto(`${gateway.httpUrl}index.html#token=wrong`);
    const result = page.locator("#result");
    await result.filter({ hasText: /\S/ }).waitFor({ timeout: 15_000 });
    assert.match(await result.textContent(), /^Error -5: authentication failed/);
    assert.equal(await page.locator("#status").textContent(), "idle");
    await page.close();
  });
});
