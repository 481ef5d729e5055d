// Operator views: presence, analytics, context usage, nodes, canvas, services (local backends and
// docker dependencies), observability, service logs, pairing codes, configuration.
import type { ControlAction, FlynnClient, ServiceLogLine } from "../../clients/typescript/src/index.js";
import { barChart, lineChart } from "./charts.js";
import { confirmDialog, errorText, field, fill, h, table, when } from "./dom.js";
import { refreshing, type Ctx, type View } from "./view.js";

const REFRESH_MS = 10_000;

/** A view whose content is reloaded on an interval and after reconnects. */
function simple(render: (client: FlynnClient, out: HTMLElement, controls: HTMLElement) => { load: () => Promise<void>; setup?: () => void }): View {
  return (root: HTMLElement, ctx: Ctx) => {
    const controls = h("div", { class: "row controls" });
    const error = h("p", { class: "error", role: "alert" });
    const out = h("div", { class: "content", "aria-live": "polite" });
    root.append(controls, error, out);
    const { load, setup } = render(ctx.client, out, controls);
    setup?.();
    const reload = async () => {
      await load();
      error.textContent = "";
    };
    controls.addEventListener("change", () => void reload().catch((e) => (error.textContent = errorText(e))));
    return refreshing(ctx, REFRESH_MS, reload, (e) => (error.textContent = errorText(e)));
  };
}

const presence = simple((client, out, controls) => {
  const channel = h("input", { type: "search", id: "presence-channel" });
  const status = h("select", { id: "presence-status" }, h("option", { value: "" }, "any"), h("option", { value: "online" }, "online"), h("option", { value: "offline" }, "offline"));
  controls.append(field("Channel", channel), field("Status", status));
  channel.addEventListener("input", () => controls.dispatchEvent(new Event("change")));
  return {
    load: async () => {
      const st = status.value as "" | "online" | "offline";
      const r = await client.system.presence({ limit: 200, ...(channel.value.trim() ? { channel: channel.value.trim() } : {}), ...(st ? { status: st } : {}) });
      fill(
        out,
        h("p", { class: "summary" }, `${r.summary.total} senders: ${r.summary.online} online, ${r.summary.offline} offline.`),
        table(
          "Senders",
          ["sender", "channel", "status", "messages", "last seen"],
          r.presence.map((p) => [p.senderName ? `${p.senderName} (${p.senderId})` : p.senderId, p.channel, h("span", { class: `badge ${p.status}` }, p.status), p.messageCount, when(p.lastSeenAt)]),
        ),
      );
    },
  };
});

const analytics = simple((client, out, controls) => {
  const days = h("select", { id: "analytics-days" }, [7, 14, 30, 90].map((d) => h("option", { value: d }, `${d} days`)));
  controls.append(field("Window", days));
  return {
    load: async () => {
      const r = await client.system.sessionAnalytics({ days: Number(days.value), topLimit: 8 });
      fill(
        out,
        h("p", { class: "summary" }, `${r.totalSessions} sessions, ${r.totalMessages} messages, ${r.averageMessagesPerSession.toFixed(1)} per session.`),
        h(
          "div",
          { class: "grid" },
          barChart("Sessions per day", r.daily.map((d) => ({ label: d.day, value: d.sessions }))),
          barChart("Messages per day", r.daily.map((d) => ({ label: d.day, value: d.messages }))),
          barChart("Top sessions (messages)", r.topSessions.map((s) => ({ label: s.sessionId, value: s.messages }))),
          barChart("Top tools (runs)", r.topTools.map((t) => ({ label: t.toolName, value: t.executions }))),
          barChart("Top topics", r.topTopics.map((t) => ({ label: t.topic, value: t.occurrences }))),
        ),
      );
    },
  };
});

const context = simple((client, out) => ({
  load: async () => {
    const r = await client.system.contextUsage();
    const threshold = r.sessions[0]?.budget.thresholdPct ?? 80;
    fill(
      out,
      h("p", { class: "summary" }, `${r.sessions.length} sessions; the dashed line is the compaction threshold (${threshold}%).`),
      barChart("Context usage per session (% of the window)", r.sessions.map((s) => ({ label: s.sessionId, value: s.budget.usagePct })), { unit: "%", max: 100, threshold }),
      table(
        "Context budgets",
        ["session", "estimated tokens", "window", "usage", "compact?"],
        r.sessions.map((s) => [s.sessionId, s.budget.estimatedTokens, s.budget.contextWindow, `${s.budget.usagePct.toFixed(1)}%`, s.budget.shouldCompact ? "yes" : "no"]),
      ),
    );
  },
}));

const nodes = simple((client, out) => ({
  load: async () => {
    const [n, loc] = await Promise.all([client.system.nodes(), client.system.location()]);
    fill(
      out,
      table(
        "Nodes",
        ["node", "role", "status", "capabilities", "device", "last location"],
        n.nodes.map((node) => {
          const l = loc.locations.find((x) => x.nodeId === node.nodeId)?.location ?? node.location;
          return [
            node.nodeId,
            node.role,
            h("span", { class: `badge ${node.connected ? "online" : "offline"}` }, node.connected ? "connected" : "disconnected"),
            node.capabilities.enabled.join(", ") || "none",
            node.status ? `${node.status.deviceName ?? node.status.platform}${node.status.batteryPct !== undefined ? `, ${node.status.batteryPct}% battery` : ""}${node.status.statusText ? ` · ${node.status.statusText}` : ""}` : "unknown",
            l ? `${l.latitude.toFixed(5)}, ${l.longitude.toFixed(5)} (${when(l.capturedAt)})` : "none",
          ];
        }),
      ),
    );
  },
}));

const canvas = simple((client, out, controls) => {
  const session = h("select", { id: "canvas-session" });
  controls.append(field("Session", session));
  return {
    load: async () => {
      const list = await client.sessions.list({ includePersisted: true, limit: 100 });
      const chosen = session.value;
      fill(session, list.sessions.map((s) => h("option", { value: s.id }, s.id)));
      if (chosen && list.sessions.some((s) => s.id === chosen)) session.value = chosen;
      if (!session.value) {
        fill(out, h("p", {}, "No sessions."));
        return;
      }
      const r = await client.canvas.list({ sessionId: session.value, limit: 50 });
      fill(
        out,
        r.artifacts.length
          ? h(
              "ul",
              { class: "artifacts" },
              r.artifacts.map((a) =>
                h("li", { class: "card" }, h("h2", {}, a.title ?? a.artifactId), h("p", {}, `${a.type} · ${a.artifactId} · updated ${when(a.updatedAt)}`), h("pre", {}, JSON.stringify(a.content, null, 2))),
              ),
            )
          : h("p", {}, `No canvas artifacts in ${session.value}.`),
      );
    },
  };
});

/** An action button; stop/restart/update ask first; the outcome goes to `result`. */
function actionButton(kind: string, id: string, action: ControlAction, run: () => Promise<string>, result: HTMLElement, after: () => Promise<void>): HTMLButtonElement {
  const b = h("button", { type: "button", class: action === "start" ? "small" : "small danger", "data-action": `${id}:${action}` }, action);
  b.addEventListener("click", async () => {
    if (action !== "start" && !(await confirmDialog(`${action} ${id}?`, `This will ${action} the ${kind} ${id}.`, action))) return;
    b.disabled = true;
    result.textContent = `${action} ${id}…`;
    try {
      result.textContent = await run();
    } catch (e) {
      result.textContent = `${action} ${id} failed: ${errorText(e)}`;
    }
    b.disabled = false;
    await after();
  });
  return b;
}

const services = simple((client, out) => {
  const result = h("p", { id: "action-result", role: "status" });
  const load = async () => {
    const [b, d] = await Promise.all([client.system.localBackends(), client.system.dockerDependencies()]);
    fill(
      out,
      result,
      h("h2", {}, "Local backends"),
      table(
        "Local backends",
        ["backend", "state", "status", "actions"],
        b.backends.map((x) => [
          `${x.name} (${x.unit})`,
          h("span", { class: `badge ${x.activeState}` }, `${x.activeState}/${x.subState}`),
          x.error ?? x.statusText,
          x.availableActions.map((a) =>
            actionButton("local backend", x.id, a, async () => {
              const r = await client.system.localBackendControl({ backend: x.id, action: a });
              return `${a} ${x.id}: ${r.message ?? r.status.statusText}`;
            }, result, load),
          ),
        ]),
      ),
      h("h2", {}, "Docker dependencies"),
      table(
        "Docker dependencies",
        ["dependency", "state", "health", "status", "actions"],
        d.dependencies.map((x) => [
          `${x.name} (${x.service})`,
          h("span", { class: `badge ${x.state}` }, x.state),
          x.health,
          x.error ?? x.statusText,
          x.availableActions.map((a) =>
            actionButton("docker dependency", x.id, a, async () => {
              const r = await client.system.dockerDependencyControl({ dependency: x.id, action: a });
              return `${a} ${x.id}: ${r.message ?? r.status.statusText}`;
            }, result, load),
          ),
        ]),
      ),
    );
  };
  return { load };
});

const observability = simple((client, out, controls) => {
  const windowMin = h("select", { id: "obs-window" }, [15, 60, 360, 1440].map((m) => h("option", { value: m, selected: m === 60 }, m < 60 ? `${m} minutes` : `${m / 60} hours`)));
  controls.append(field("Window", windowMin));
  return {
    load: async () => {
      const [src, r] = await Promise.all([client.system.observabilitySources(), client.system.observabilitySeries({ windowMinutes: Number(windowMin.value) })]);
      const time = (t: number) => new Date(t).toLocaleTimeString();
      fill(
        out,
        table("Sources", ["source", "kind", "runtime", "status"], src.sources.map((s) => [s.name, s.kind, s.runtime, s.status])),
        h(
          "div",
          { class: "grid" },
          r.series.map((series) => {
            const name = src.sources.find((s) => s.id === series.sourceId)?.name ?? series.sourceId;
            return lineChart(
              `${name}: errors and restarts per ${r.bucketSeconds} s`,
              [
                { name: "errors", points: series.points.map((p) => ({ x: p.ts, y: p.errorCount })) },
                { name: "restarts", points: series.points.map((p) => ({ x: p.ts, y: p.restartCount })) },
                { name: "state code", points: series.points.map((p) => ({ x: p.ts, y: p.stateCode })) },
              ],
              time,
            );
          }),
        ),
      );
    },
  };
});

const LEVELS = ["", "error", "warn", "info", "debug"];

const logs = simple((client, out, controls) => {
  const source = h("select", { id: "log-source" });
  const level = h("select", { id: "log-level" }, LEVELS.map((l) => h("option", { value: l }, l || "any")));
  const text = h("input", { type: "search", id: "log-text" });
  const since = h("select", { id: "log-since" }, [300, 3600, 86400].map((s) => h("option", { value: s, selected: s === 3600 }, s === 300 ? "5 minutes" : s === 3600 ? "1 hour" : "1 day")));
  controls.append(field("Source", source), field("Since", since), field("Level", level), field("Text", text));
  let lines: ServiceLogLine[] = [];
  let meta = "";
  const render = () => {
    const needle = text.value.trim().toLowerCase();
    const shown = lines.filter((l) => (!level.value || l.level.toLowerCase().startsWith(level.value)) && (!needle || l.text.toLowerCase().includes(needle)));
    fill(
      out,
      h("p", { class: "summary" }, `${shown.length} of ${lines.length} lines${meta}`),
      h("ol", { class: "logs", id: "log-lines", tabindex: 0, "aria-label": "Log lines" }, shown.map((l) => h("li", { class: `lvl-${l.level.toLowerCase()}` }, h("time", {}, new Date(l.ts).toLocaleTimeString()), ` ${l.level} `, h("span", { class: "line" }, l.text)))),
    );
  };
  text.addEventListener("input", render);
  level.addEventListener("change", (e) => {
    e.stopPropagation();
    render();
  });
  return {
    load: async () => {
      if (!source.options.length) {
        const src = await client.system.observabilitySources();
        fill(source, src.sources.filter((s) => s.logCapable).map((s) => h("option", { value: s.id }, s.name)));
      }
      if (!source.value) {
        fill(out, h("p", {}, "No source has logs."));
        return;
      }
      const r = await client.system.serviceLogs({ sourceId: source.value, lines: 500, sinceSeconds: Number(since.value) });
      lines = r.lines;
      meta = `${r.redacted ? ", secrets masked" : ""}${r.truncated ? ", truncated" : ""}; fetched ${when(r.fetchedAt)}.`;
      render();
    },
  };
});

const pairing = simple((client, out, controls) => {
  const channel = h("input", { type: "text", id: "pairing-channel", value: "telegram" });
  const generate = h("button", { type: "button", id: "pairing-generate" }, "Generate code");
  const created = h("p", { id: "pairing-created", role: "status" });
  controls.append(field("Channel", channel), generate, created);
  const load = async () => {
    const r = await client.pairing.list();
    fill(out, table("Active pairing codes", ["code", "channel", "created", "expires"], r.codes.map((c) => [h("code", {}, c.code), c.channel, when(c.createdAt), when(c.expiresAt)])));
  };
  generate.addEventListener("click", async () => {
    try {
      const r = await client.pairing.generate({ channel: channel.value.trim() });
      created.textContent = `Code ${r.code} for ${channel.value.trim()}, valid until ${when(r.expiresAt)}.`;
      await load();
    } catch (e) {
      created.textContent = errorText(e);
    }
  });
  return { load };
});

const config = simple((client, out, controls) => {
  const reload = h("button", { type: "button", id: "config-reload" }, "Reload from file");
  const result = h("p", { id: "config-result", role: "status" });
  controls.append(reload, result);
  const load = async () => {
    const r = await client.config.get();
    fill(out, h("pre", { class: "config", tabindex: 0, "aria-label": "Configuration (secrets redacted)" }, JSON.stringify(r, null, 2)));
  };
  reload.addEventListener("click", async () => {
    try {
      const r = await client.config.reload();
      result.textContent = r.success ? "Reloaded: the file's configuration is in force." : "The file was not applied.";
      await load();
    } catch (e) {
      result.textContent = `Reload failed: ${errorText(e)}`;
    }
  });
  return { load };
});

export const OPERATOR_VIEWS: { id: string; title: string; view: View }[] = [
  { id: "presence", title: "Presence", view: presence },
  { id: "analytics", title: "Analytics", view: analytics },
  { id: "context", title: "Context", view: context },
  { id: "nodes", title: "Nodes", view: nodes },
  { id: "canvas", title: "Canvas", view: canvas },
  { id: "services", title: "Services", view: services },
  { id: "observability", title: "Observability", view: observability },
  { id: "logs", title: "Logs", view: logs },
  { id: "pairing", title: "Pairing", view: pairing },
  { id: "config", title: "Config", view: config },
];
