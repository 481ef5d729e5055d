// The dashboard in Chromium against the real daemon (token set, fake ops tools): sign-in with a
// wrong and a right token, a streamed chat round trip, Stop, a tool approval granted and one
// refused, a running turn rejoined after page reloads, attachments, context_warning, the queue
// mode, every operator view showing what the gateway holds, an operator action reaching the fake systemctl and docker, axe-core on every
// view, a phone width, keyboard use, and reconnecting after a gateway restart. Screenshots of
// every view go to target/dashboard-screenshots/.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { join } from "node:path";
import { axe, calls, dashboardToml, fakeOps, launch, removeDir, rpc, screenshot, startGateway, tempDir, TOKEN } from "./support.mjs";

let gw;
let dir;
let browser;
let page;
let seed;
let nodeConn;
const consoleErrors = [];

async function checkA11y(name) {
  const violations = await axe(page);
  assert.deepEqual(violations, [], `${name}: serious or critical accessibility issues: ${JSON.stringify(violations, null, 1)}`);
}

async function openView(id) {
  await page.click(`#nav-${id}`);
  await page.waitForFunction((v) => document.querySelector("#nav-" + v)?.getAttribute("aria-current") === "page", id);
}

const text = (sel) => page.locator(sel).innerText();

/** Polls `find` until it returns something (bounded). */
async function waitFor(find, what = "condition", ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = find();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("dashboard", () => {
  before(async () => {
    dir = tempDir("flynn-dashboard-");
    const toml = `${dashboardToml()}\n[agent]\nwarning_pct = 40.0\nthreshold_pct = 90.0\napproval_timeout_ms = 30000\n${fakeOps(dir)}`;
    gw = await startGateway({ dir, toml });
    // Real data: a session with history, a canvas artifact, a pairing code, a companion node.
    seed = await rpc(gw.url, TOKEN);
    await seed.call("sessions.create", { sessionId: "ws:seeded" });
    await seed.call("agent.send", { sessionId: "ws:seeded", message: "seeded hello" });
    await seed.call("canvas.put", { sessionId: "ws:seeded", artifactId: "plan-1", type: "markdown", title: "Seeded plan", content: { text: "step one" } });
    await seed.call("pairing.generate", { channel: "telegram" });
    nodeConn = await rpc(gw.url, TOKEN);
    await nodeConn.call("node.register", { nodeId: "phone-1", role: "companion", protocolVersion: 1, capabilities: ["location"] });
    await nodeConn.call("node.location.set", { latitude: 48.85837, longitude: 2.29448, accuracyMeters: 10 });
    await nodeConn.call("node.status.set", { platform: "android", deviceName: "Pixel test", batteryPct: 81 });
    browser = await launch(join(dir, "chromium-profile"));
    page = await browser.newPage();
    page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
  });

  after(async () => {
    await browser?.close();
    seed?.close();
    nodeConn?.close();
    await gw?.stop();
    removeDir(dir);
  });

  it("serves the page with its headers and no inline script", async () => {
    const res = await page.goto(gw.httpUrl);
    assert.equal(res.status(), 200);
    const headers = res.headers();
    assert.match(headers["content-security-policy"], /script-src 'self'/);
    assert.equal(headers["x-content-type-options"], "nosniff");
    assert.equal(await page.locator("script:not([src])").count(), 0);
  });

  it("asks for the token and shows a clear error for a wrong one", async () => {
    await page.waitForSelector("#token");
    await screenshot(page, "signin");
    await checkA11y("sign-in");
    await page.fill("#token", "not-the-token");
    await page.press("#token", "Enter");
    await page.waitForSelector("#signin-error");
    assert.match(await text("#signin-error"), /refused this token/);
    await screenshot(page, "signin-wrong-token");
    await page.fill("#token", TOKEN);
    await page.click("button[type=submit]");
    await page.waitForSelector("#composer");
    assert.equal(await text("#conn"), "connected");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("flynn.token")), TOKEN);
  });

  it("lists sessions with paging and the frontend filter, and shows history", async () => {
    await page.waitForSelector('[data-session="ws:seeded"]');
    await page.fill("#frontend-filter", "telegram");
    await page.waitForFunction(() => !document.querySelector('[data-session="ws:seeded"]'));
    assert.match(await text("#page-info"), /no sessions/);
    await page.fill("#frontend-filter", "");
    await page.click('[data-session="ws:seeded"]');
    await page.waitForFunction(() => document.querySelector("#transcript")?.textContent.includes("You said: seeded hello"));
    assert.equal(await text("#session-title"), "ws:seeded");
    await checkA11y("chat");
    await screenshot(page, "chat-history");
  });

  it("streams an answer as content events arrive", async () => {
    await page.click("#new-session");
    await page.waitForFunction(() => document.querySelector("#session-title")?.textContent.startsWith("ws:") && document.querySelector("#session-title").textContent !== "ws:seeded");
    // Part of the answer is in the page while the run is still going: its chunks come a minute
    // apart (the longest delay the embedded model takes), so the page shows the first one for
    // that long however slow the browser (with 120 ms, a slow page could miss the window).
    await page.fill("#composer", "[[delay:60000]] alpha beta gamma delta epsilon zeta eta theta iota kappa");
    await page.press("#composer", "Enter");
    await page.waitForFunction(() => {
      const m = document.querySelector(".msg.assistant.streaming .text");
      return m && m.textContent.length > 0 && !m.textContent.includes("kappa");
    });
    assert.equal(await page.locator("#stop").isEnabled(), true);
    await page.click("#stop");
    await page.waitForFunction(() => document.querySelector(".msg.assistant:last-child .stopped")?.textContent === "Stopped.");
    // A whole answer streams into its message, which then stops streaming.
    await page.fill("#composer", "[[delay:120]] alpha beta gamma delta epsilon zeta eta theta iota kappa");
    await page.press("#composer", "Enter");
    await page.waitForFunction(() => {
      const m = document.querySelector(".msg.assistant:last-child");
      return m && !m.classList.contains("streaming") && (m.querySelector(".text")?.textContent ?? "").includes("kappa");
    });
    assert.match(await page.locator(".msg.assistant .text").last().innerText(), /You said: alpha beta gamma .* kappa/);
    assert.equal(await page.locator("#send").isEnabled(), true);
  });

  it("Stop cancels the run (agent.cancel)", async () => {
    // Chunks a minute apart (the longest delay the embedded model takes): the click lands while
    // the run waits, however slow the browser (with 400 ms, a slow click could come after it).
    await page.fill("#composer", "[[delay:60000]] one two three four five six seven eight nine ten eleven twelve");
    await page.click("#send");
    await page.waitForFunction(() => document.querySelector(".msg.assistant.streaming .text")?.textContent.length > 0);
    await page.click("#stop");
    await page.waitForFunction(() => document.querySelector(".msg.assistant:last-child .stopped")?.textContent === "Stopped.");
    assert.doesNotMatch(await page.locator(".msg.assistant .text").last().innerText(), /twelve/);
  });

  it("asks before a tool runs: one approval granted, one refused", async () => {
    await page.check("#tool-approval");
    await page.waitForFunction(() => document.querySelector("#chat-note")?.textContent.includes("approval"));
    await page.fill("#composer", '[[tool:shell.exec {"command":"echo approved-run"}]]');
    await page.click("#send");
    await page.waitForSelector("dialog#approval[open]");
    assert.match(await text("#approval-title"), /shell\.exec/);
    assert.match(await page.locator("dialog#approval pre").innerText(), /approved-run/);
    await checkA11y("tool approval dialog");
    await screenshot(page, "chat-tool-approval");
    await page.click("#approve");
    await page.waitForSelector(".msg.assistant:not(.streaming):last-child details.tool.ok");
    assert.match(await page.locator(".msg.assistant").last().innerText(), /approved-run/);

    await page.fill("#composer", '[[tool:shell.exec {"command":"echo refused-run"}]]');
    await page.click("#send");
    await page.waitForSelector("dialog#approval[open]");
    await page.keyboard.press("Enter"); // focus starts on Refuse
    // A refused call never starts: only its tool_end, saying so, and no output.
    await page.waitForSelector(".msg.assistant:not(.streaming):last-child p.tool");
    assert.match(await page.locator(".msg.assistant:last-child p.tool").innerText(), /shell\.exec failed: skipped: the user refused/);
    assert.doesNotMatch(await page.locator(".msg.assistant").last().innerText(), /^refused-run$/m);
    await page.uncheck("#tool-approval");
  });

  it("rejoins a running turn after a page reload and shows the rest of its stream once", async () => {
    const before = await text("#session-title");
    await page.click("#new-session");
    await page.waitForFunction((b) => {
      const t = document.querySelector("#session-title")?.textContent ?? "";
      return t.startsWith("ws:") && t !== b;
    }, before);
    const sessionId = await text("#session-title");
    // Tool calls of this session wait for an approval from this Node connection (the page's
    // own setting would go with its connection), so the turn surely runs across the reloads.
    await seed.call("agent.setToolUseCallback", { sessionId, enabled: true });
    // The events of the turn each page load receives, and the page's agent.attach requests.
    let load = 0;
    const received = [[], [], []]; // load 0 is not watched: its socket opened before this test
    const attaches = [];
    const watch = (ws) => {
      const n = load;
      ws.on("framereceived", ({ payload }) => {
        const f = JSON.parse(String(payload));
        if (f.event && f.runId) received[n].push(f);
      });
      ws.on("framesent", ({ payload }) => {
        const f = JSON.parse(String(payload));
        if (f.method === "agent.attach") attaches.push({ load: n, params: f.params });
      });
    };
    page.on("websocket", watch);
    try {
      await page.fill("#composer", 'rejoin [[tool:shell.exec {"command":"echo rejoined"}]] [[delay:400]] [[long:90]]');
      await page.click("#send");
      await page.waitForSelector("dialog#approval[open]");
      // The Node connection follows the turn too, for its approvalId.
      const following = seed.call("agent.attach", { sessionId });
      const approval = await waitFor(() => seed.events.find((f) => f.event === "tool_approval" && f.data.sessionId === sessionId));
      const runId = approval.runId;
      const kept = await page.evaluate((s) => JSON.parse(sessionStorage.getItem(`flynn.run.${s}`)), sessionId);
      assert.equal(kept.runId, runId, "the tab keeps the running turn");

      // Reload 1, while the turn waits for its approval: the page rejoins it after what it saw.
      load = 1;
      await page.reload();
      await page.waitForSelector(`.msg.assistant.streaming[data-rejoined="${runId}"]`);
      assert.equal(await page.locator("dialog#approval[open]").count(), 0, "the answered-before approval is not shown again");
      assert.deepEqual(attaches.map((a) => a.params), [{ sessionId, runId, afterSeq: kept.runSeq }]);
      await seed.call("agent.approveTool", { approvalId: approval.data.approvalId, approved: true });

      // Reload 2, in the middle of the streamed answer: the text shown so far comes back and
      // the rest is appended once.
      await page.waitForFunction(() => (document.querySelector(".msg.assistant.streaming .text")?.textContent ?? "").split(" ").length > 8);
      load = 2;
      await page.reload();
      await page.waitForSelector(`.msg.assistant[data-rejoined="${runId}"]:not(.streaming)`, { timeout: 60_000 });
      const resumedAfter = attaches.at(-1).params.afterSeq;
      assert.equal(attaches.length, 2);
      assert.ok(resumedAfter > approval.runSeq, `the second rejoin started after what was shown (afterSeq ${resumedAfter})`);

      const stored = await seed.call("sessions.get", { sessionId, historyLimit: 10 });
      const reply = stored.history.at(-1);
      assert.equal(reply.role, "assistant");
      assert.match(reply.content, /^Tool shell\.exec returned: rejoined\./);
      const shown = page.locator(".msg.assistant[data-rejoined]");
      assert.equal(await shown.count(), 1, "one answer in the transcript");
      assert.equal(await shown.locator(".text").textContent(), reply.content, "the answer shown is the stored reply: each chunk once");
      assert.equal(await page.locator(".msg.user", { hasText: "rejoin" }).count(), 1);
      for (const n of [1, 2]) {
        const seqs = received[n].filter((f) => f.runId === runId).map((f) => f.runSeq);
        const after = attaches[n - 1].params.afterSeq;
        assert.deepEqual(seqs, seqs.map((_, i) => after + 1 + i), `load ${n}: each event after afterSeq ${after} once, in order`);
      }
      assert.equal(await page.evaluate((s) => sessionStorage.getItem(`flynn.run.${s}`), sessionId), null, "nothing kept once the turn ended");
      assert.equal((await following).content, reply.content);
    } finally {
      page.off("websocket", watch);
      await seed.call("agent.setToolUseCallback", { sessionId, enabled: false });
    }
  });

  it("renders attachments: images inline, other files as downloads", async () => {
    await page.fill("#composer", "[[attach:image/png dot.png]] [[attach:text/plain notes.txt]]");
    await page.click("#send");
    await page.waitForSelector('.msg.assistant:last-child img[alt="dot.png"]');
    const width = await page.locator('.msg.assistant img[alt="dot.png"]').last().evaluate((img) => img.naturalWidth);
    assert.equal(width, 1);
    const link = page.locator('.msg.assistant a[download="notes.txt"]').last();
    assert.match(await link.getAttribute("href"), /^blob:/);
  });

  it("shows context_warning", async () => {
    await page.fill("#composer", "[[long:2500]]");
    await page.click("#send");
    await page.waitForSelector(".msg.assistant:last-child .warning", { timeout: 30_000 });
    assert.match(await page.locator(".msg.assistant .warning").last().innerText(), /Context (warning|checkpoint)/);
    await page.locator("#transcript").evaluate((t) => (t.scrollTop = t.scrollHeight - t.clientHeight - 420));
    await screenshot(page, "chat");
  });

  it("shows and sets the session's queue mode", async () => {
    await page.selectOption("#queue-mode", "collect");
    await page.click("#queue-apply");
    const id = await text("#session-title");
    await page.waitForFunction((s) => document.querySelector(`[data-session="${s}"]`)?.textContent.includes("collect"), id);
    const list = await seed.call("sessions.list", { includePersisted: true, limit: 100 });
    assert.equal(list.sessions.find((s) => s.id === id).config.queue.mode, "collect");
  });

  it("deletes a session after confirmation", async () => {
    await seed.call("sessions.create", { sessionId: "ws:doomed" });
    await page.fill("#frontend-filter", "ws");
    await page.waitForSelector('[data-session="ws:doomed"]');
    await page.click('button[aria-label="Delete ws:doomed"]');
    await page.waitForSelector("dialog.confirm[open]");
    await page.click("dialog.confirm button.danger");
    await page.waitForFunction(() => !document.querySelector('[data-session="ws:doomed"]'));
    await assert.rejects(seed.call("sessions.get", { sessionId: "ws:doomed" }), (e) => e.code === 1);
  });

  it("shows every operator view with what the gateway holds", async () => {
    const views = {
      presence: async () => assert.match(await text(".summary"), /\d+ senders: \d+ online, \d+ offline/),
      analytics: async () => {
        const r = await seed.call("system.sessionAnalytics", { days: 7, topLimit: 8 });
        assert.match(await text(".summary"), new RegExp(`^${r.totalSessions} sessions, ${r.totalMessages} messages`));
        assert.ok((await page.locator("figure.chart-figure svg").count()) >= 5);
        assert.ok(await page.locator('figure:has-text("Top tools") svg').getAttribute("aria-label").then((l) => l.includes("shell.exec")));
      },
      context: async () => {
        await page.waitForSelector("svg .threshold", { state: "attached" });
        assert.match(await page.locator("main .content > table").first().innerText(), /ws:seeded/);
      },
      nodes: async () => {
        const t = await page.locator("main .content > table").first().innerText();
        assert.match(t, /phone-1/);
        assert.match(t, /companion/);
        assert.match(t, /Pixel test, 81% battery/);
        assert.match(t, /48\.85837, 2\.29448/);
      },
      canvas: async () => {
        await page.selectOption("#canvas-session", "ws:seeded");
        await page.waitForSelector('.artifacts h2:has-text("Seeded plan")');
      },
      services: async () => {
        const t = await page.locator("main").innerText();
        assert.match(t, /Ollama \(ollama\.service\)/);
        assert.match(t, /active\/running/);
        assert.match(t, /searxng/);
      },
      observability: async () => {
        assert.ok((await page.locator("figure.chart-figure").count()) >= 1);
      },
      logs: async () => {
        await page.waitForSelector("#log-lines li");
      },
      pairing: async () => {
        const codes = await seed.call("pairing.list");
        assert.match(await page.locator("main .content > table").first().innerText(), new RegExp(codes.codes[0].code));
      },
      config: async () => {
        const cfg = await text("pre.config");
        assert.match(cfg, /"server"/);
        assert.doesNotMatch(cfg, new RegExp(TOKEN.replace(/[?>~]/g, "\\$&")));
      },
    };
    for (const [id, check] of Object.entries(views)) {
      await openView(id);
      await page.waitForFunction(() => {
        const c = document.querySelector("main .content");
        return c && c.childElementCount > 0;
      });
      await check();
      await checkA11y(id);
      await screenshot(page, id);
    }
  });

  it("filters service logs by level and text", async () => {
    await openView("logs");
    await page.waitForSelector("#log-lines li");
    const all = await page.locator("#log-lines li").count();
    const firstLine = await page.locator("#log-lines li .line").first().innerText();
    await page.fill("#log-text", firstLine.slice(0, 12));
    const filtered = await page.locator("#log-lines li").count();
    assert.ok(filtered >= 1 && filtered <= all);
    await page.fill("#log-text", "zz-no-such-text-zz");
    assert.equal(await page.locator("#log-lines li").count(), 0);
    await page.fill("#log-text", "");
  });

  it("runs operator actions after confirmation, reaching the fake systemctl and docker", async () => {
    await openView("services");
    await page.click('[data-action="ollama:stop"]');
    await page.waitForSelector("dialog.confirm[open]");
    await page.click("dialog.confirm button.danger");
    await page.waitForFunction(() => /stop ollama/.test(document.querySelector("#action-result")?.textContent ?? "") && !/…$/.test(document.querySelector("#action-result").textContent));
    assert.ok(calls(dir, "systemctl").some((c) => /stop ollama\.service/.test(c)), calls(dir, "systemctl").join("\n"));

    await page.click('[data-action="searxng:start"]');
    await page.waitForFunction(() => /start searxng:/.test(document.querySelector("#action-result")?.textContent ?? ""));
    assert.ok(calls(dir, "docker").some((c) => / start searxng$/.test(c) || / up -d .*searxng/.test(c)), calls(dir, "docker").join("\n"));
    // A refused confirmation runs nothing.
    const before = calls(dir, "systemctl").length;
    await page.click('[data-action="ollama:restart"]');
    await page.waitForSelector("dialog.confirm[open]");
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => !document.querySelector("dialog.confirm"));
    assert.equal(calls(dir, "systemctl").filter((c) => /restart/.test(c)).length, calls(dir, "systemctl").slice(0, before).filter((c) => /restart/.test(c)).length);
  });

  it("generates a pairing code and reloads the configuration", async () => {
    await openView("pairing");
    await page.fill("#pairing-channel", "whatsapp");
    await page.click("#pairing-generate");
    await page.waitForFunction(() => /for whatsapp/.test(document.querySelector("#pairing-created")?.textContent ?? ""));
    assert.match(await page.locator("main .content > table").first().innerText(), /whatsapp/);
    await openView("config");
    await page.click("#config-reload");
    await page.waitForFunction(() => (document.querySelector("#config-result")?.textContent ?? "") !== "");
    assert.match(await text("#config-result"), /Reloaded/);
  });

  it("is usable by keyboard", async () => {
    await page.goto(`${gw.httpUrl}#/nodes`);
    await page.waitForSelector("main table");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
    await page.keyboard.press("Enter");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "main");
    // Views are links: focus one and follow it with Enter.
    await page.focus("#nav-chat");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#composer");
    // The composer sends with Enter.
    await page.focus("#composer");
    await page.keyboard.type("typed by keyboard");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelector(".msg.assistant:last-child:not(.streaming) .text")?.textContent === "You said: typed by keyboard");
  });

  it("is readable at a phone width", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const id of ["chat", "analytics", "services"]) {
      await openView(id);
      await page.waitForTimeout(300);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${id}: ${overflow}px of horizontal overflow at 390px`);
      await screenshot(page, `phone-${id}`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("reconnects after a gateway restart without a page reload", async () => {
    await openView("pairing");
    const port = gw.port;
    await page.evaluate(() => (window.__marker = "same page"));
    await gw.stop();
    await page.waitForFunction(() => document.querySelector("#conn")?.textContent !== "connected");
    gw = await startGateway({ dir, port, toml: `${dashboardToml()}\n${fakeOps(dir)}` });
    await page.waitForFunction(() => document.querySelector("#conn")?.textContent === "connected", null, { timeout: 20_000 });
    assert.equal(await page.evaluate(() => window.__marker), "same page");
    await openView("nodes");
    await page.waitForFunction(() => document.querySelector("main table"));
    seed.close();
    seed = await rpc(gw.url, TOKEN);
  });

  it("shows a clear page when the gateway is unreachable, and recovers", async () => {
    const p2 = await browser.newPage();
    let blocked = true;
    await p2.routeWebSocket(/.*/, (ws) => (blocked ? ws.close() : ws.connectToServer()));
    await p2.goto(gw.httpUrl);
    await p2.waitForSelector("#down-title");
    assert.match(await p2.locator("main").innerText(), /No connection to ws:\/\/127\.0\.0\.1:\d+\//);
    const saved = page;
    page = p2;
    await checkA11y("unreachable");
    await screenshot(p2, "unreachable");
    page = saved;
    blocked = false;
    await p2.click("text=Try again now");
    await p2.waitForSelector("#token"); // a new tab: the token is asked for again
    await p2.close();
  });

  it("logged no errors in the page console other than expected connection failures", () => {
    const unexpected = consoleErrors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|net::/.test(e));
    assert.deepEqual(unexpected, []);
  });
});
