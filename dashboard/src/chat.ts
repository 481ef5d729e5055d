// Chat: sessions (filter, paging, create, delete), history, the composer, streamed answers,
// Stop, tool calls, tool approval, attachments, context warnings and the queue mode.
import type { AgentSendParams, FlynnEvent, QueueMode, SessionSummary, TokenUsage, ToolApprovalEventData } from "../../clients/typescript/src/index.js";
import { ErrorCode, isFlynnError } from "../../clients/typescript/src/index.js";
import { confirmDialog, errorText, field, fill, h, when } from "./dom.js";
import { forgetRun, type RunPosition, resumePoint, runTag, saveRun } from "./rejoin.js";
import type { Ctx } from "./view.js";

const PAGE = 20;
const MODES: QueueMode[] = ["followup", "collect", "steer", "steer_backlog", "interrupt"];
/** Sessions with tool approval turned on from this tab (the protocol has no getter). */
const approvalOn = new Set<string>();

export function chatView(root: HTMLElement, ctx: Ctx): () => void {
  const { client } = ctx;
  let offset = 0;
  let current: string | undefined = sessionStorage.getItem("flynn.session") ?? undefined;
  let running = false;

  const filter = h("input", { type: "search", id: "frontend-filter", placeholder: "ws, telegram…" });
  const list = h("ul", { class: "sessions", id: "session-list" });
  const pageInfo = h("span", { id: "page-info" });
  const prev = h("button", { type: "button", id: "prev-page" }, "Previous");
  const next = h("button", { type: "button", id: "next-page" }, "Next");
  const newButton = h("button", { type: "button", id: "new-session" }, "New session");
  const listError = h("p", { class: "error", role: "alert" });

  const title = h("h2", { id: "session-title" }, "No session selected");
  const modeSelect = h("select", { id: "queue-mode" }, MODES.map((m) => h("option", { value: m }, m)));
  const modeApply = h("button", { type: "button", id: "queue-apply" }, "Set mode");
  const approval = h("input", { type: "checkbox", id: "tool-approval" });
  const note = h("p", { id: "chat-note", role: "status", class: "note" });
  const transcript = h("ol", { id: "transcript", class: "transcript", "aria-live": "polite", "aria-label": "Messages" });
  const input = h("textarea", { id: "composer", rows: 3, required: true, placeholder: "Message Flynn (Enter sends, Shift+Enter for a new line)" });
  const send = h("button", { type: "submit", id: "send" }, "Send");
  const stop = h("button", { type: "button", id: "stop", disabled: true }, "Stop");
  const form = h("form", { class: "composer", "aria-label": "Composer" }, field("Message", input), h("div", { class: "actions" }, send, stop));

  root.append(
    h(
      "div",
      { class: "chat" },
      h(
        "section",
        { class: "panel", "aria-labelledby": "sessions-title" },
        h("h2", { id: "sessions-title" }, "Sessions"),
        h("div", { class: "row" }, field("Frontend", filter), newButton),
        listError,
        list,
        h("div", { class: "row pager" }, prev, pageInfo, next),
      ),
      h(
        "section",
        { class: "panel conversation", "aria-labelledby": "session-title" },
        title,
        h("div", { class: "row" }, field("Queue mode", modeSelect), modeApply, h("label", { class: "check" }, approval, " Ask before tools run")),
        note,
        transcript,
        form,
      ),
    ),
  );

  async function loadSessions(): Promise<void> {
    const frontend = filter.value.trim();
    const page = await client.sessions.list({ includePersisted: true, limit: PAGE, offset, ...(frontend ? { frontend } : {}) });
    listError.textContent = "";
    pageInfo.textContent = page.total ? `${offset + 1}–${offset + page.sessions.length} of ${page.total}` : "no sessions";
    prev.disabled = offset === 0;
    next.disabled = offset + PAGE >= page.total;
    fill(list, page.sessions.map(sessionItem));
    const summary = page.sessions.find((s) => s.id === current);
    if (summary) modeSelect.value = summary.config.queue.mode;
  }

  function sessionItem(s: SessionSummary): HTMLElement {
    const open = h(
      "button",
      { type: "button", class: "session", "aria-current": s.id === current ? "true" : null, "data-session": s.id },
      h("strong", {}, s.id),
      h("small", {}, `${s.messageCount} messages · ${s.config.queue.mode} · ${when(s.lastMessageAt)}`),
    );
    open.addEventListener("click", () => void select(s.id));
    const del = h("button", { type: "button", class: "danger small", "aria-label": `Delete ${s.id}` }, "Delete");
    del.addEventListener("click", async () => {
      if (!(await confirmDialog("Delete session?", `Delete ${s.id} and its stored messages? This cannot be undone.`, "Delete"))) return;
      try {
        await client.sessions.delete({ sessionId: s.id });
        if (current === s.id) {
          current = undefined;
          sessionStorage.removeItem("flynn.session");
          title.textContent = "No session selected";
          transcript.replaceChildren();
        }
        await loadSessions();
      } catch (e) {
        listError.textContent = errorText(e);
      }
    });
    return h("li", {}, open, del);
  }

  async function select(id: string): Promise<void> {
    current = id;
    sessionStorage.setItem("flynn.session", id);
    title.textContent = id;
    approval.checked = approvalOn.has(id);
    try {
      const detail = await client.sessions.get({ sessionId: id, historyLimit: 200 });
      fill(transcript, detail.history.map((m) => message(m.role, m.content)));
      note.textContent = `Created ${when(detail.createdAt)}, last active ${when(detail.lastActiveAt)}.`;
      // A turn still running (this tab was reloaded, or another client started it): rejoin it.
      if (detail.runId !== undefined && !running) void rejoin(id, detail.runId);
      else if (detail.runId === undefined) forgetRun(id);
    } catch (e) {
      if (isFlynnError(e) && e.code === ErrorCode.SessionNotFound) {
        transcript.replaceChildren();
        note.textContent = "New session: no messages yet.";
      } else note.textContent = errorText(e);
    }
    await loadSessions();
    input.focus();
  }

  function message(role: string, text: string): HTMLLIElement {
    return h("li", { class: `msg ${role}` }, h("span", { class: "role" }, role), h("div", { class: "text" }, text));
  }

  filter.addEventListener("input", () => {
    offset = 0;
    void loadSessions().catch((e) => (listError.textContent = errorText(e)));
  });
  prev.addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    void loadSessions();
  });
  next.addEventListener("click", () => {
    offset += PAGE;
    void loadSessions();
  });
  newButton.addEventListener("click", async () => {
    try {
      const { sessionId } = await client.sessions.create({});
      await select(sessionId);
    } catch (e) {
      listError.textContent = errorText(e);
    }
  });
  modeApply.addEventListener("click", async () => {
    if (!current) return;
    try {
      const result = await client.agent.send({ sessionId: current, message: `/queue set ${modeSelect.value}` });
      note.textContent = result.content;
      await loadSessions();
    } catch (e) {
      note.textContent = errorText(e);
    }
  });
  approval.addEventListener("change", async () => {
    if (!current) return;
    try {
      await client.agent.setToolUseCallback({ enabled: approval.checked, sessionId: current });
      if (approval.checked) approvalOn.add(current);
      else approvalOn.delete(current);
      note.textContent = approval.checked ? "Tool calls now wait for your approval." : "Tool calls run without asking.";
    } catch (e) {
      approval.checked = !approval.checked;
      note.textContent = errorText(e);
    }
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  stop.addEventListener("click", () => {
    if (current) void client.agent.cancel({ sessionId: current }).catch((e) => (note.textContent = errorText(e)));
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || running) return;
    if (!current) {
      const { sessionId } = await client.sessions.create({});
      await select(sessionId);
    }
    const sessionId = current!;
    input.value = "";
    transcript.append(message("user", text));
    const params: AgentSendParams = { sessionId, message: text };
    await showRun(sessionId, undefined, (onEvent) => client.agent.send(params, { timeoutMs: 120_000, onEvent }));
  });

  /** Follows the turn `runId` of `sessionId` from where this tab left it (see rejoin.ts). */
  async function rejoin(sessionId: string, runId: string): Promise<void> {
    const from = resumePoint(sessionId, runId);
    await showRun(sessionId, from, (onEvent) => client.stream("agent.attach", { sessionId, runId, afterSeq: from.runSeq }, { timeoutMs: 120_000, onEvent }));
  }

  /**
   * Shows a streamed turn as an assistant message (from `from`, when rejoining one), keeping the
   * tab's position in it for a reload, until `run` settles.
   */
  async function showRun(
    sessionId: string,
    from: RunPosition | undefined,
    run: (onEvent: (ev: FlynnEvent) => void) => PromiseLike<{ content: string; usage: TokenUsage }>,
  ): Promise<void> {
    const answer = h("div", { class: "text" }, from?.text ?? "");
    const extras = h("div", { class: "extras" });
    const item = h("li", { class: "msg assistant streaming", "aria-busy": "true" }, h("span", { class: "role" }, "assistant"), answer, extras);
    if (from !== undefined) item.dataset.rejoined = from.runId;
    transcript.append(item);
    setRunning(true);
    const onEvent = (ev: FlynnEvent) => {
      onRunEvent(ev, answer, extras);
      const tag = runTag(ev);
      if (tag !== undefined) saveRun(sessionId, { ...tag, text: answer.textContent ?? "" });
    };
    try {
      const result = await run(onEvent);
      if (!answer.textContent) answer.textContent = result.content;
      note.textContent = `${result.usage.inputTokens} tokens in, ${result.usage.outputTokens} out.`;
    } catch (err) {
      const stopped = isFlynnError(err) && err.code === ErrorCode.RequestCancelled;
      extras.append(h("p", { class: stopped ? "stopped" : "error" }, stopped ? "Stopped." : `Failed: ${errorText(err)}`));
    } finally {
      forgetRun(sessionId);
      item.classList.remove("streaming");
      item.removeAttribute("aria-busy");
      setRunning(false);
      item.scrollIntoView({ block: "end" });
      void loadSessions().catch(() => undefined);
    }
  }

  function setRunning(on: boolean): void {
    running = on;
    send.disabled = on;
    stop.disabled = !on;
  }

  function onRunEvent(ev: FlynnEvent, answer: HTMLElement, extras: HTMLElement): void {
    switch (ev.event) {
      case "content":
        if (ev.data.transient) extras.append(h("p", { class: "notice" }, ev.data.text));
        else answer.textContent += ev.data.text;
        break;
      case "tool_start":
        extras.append(
          h("details", { class: "tool running", "data-tool": ev.data.tool }, h("summary", {}, `Running ${ev.data.tool}…`), h("pre", {}, JSON.stringify(ev.data.args, null, 2))),
        );
        break;
      case "tool_end": {
        const open = [...extras.querySelectorAll<HTMLElement>("details.tool.running")].find((d) => d.dataset.tool === ev.data.tool);
        const r = ev.data.result;
        const text = r.success ? `${ev.data.tool} finished` : `${ev.data.tool} failed: ${r.error ?? "error"}`;
        if (open) {
          open.classList.replace("running", r.success ? "ok" : "failed");
          fill(open.querySelector("summary")!, text);
          open.append(h("pre", {}, r.output));
        } else extras.append(h("p", { class: "tool" }, text));
        break;
      }
      case "attachment":
        extras.append(attachment(ev.data.mimeType, ev.data.data, ev.data.filename));
        break;
      case "context_warning":
        extras.append(h("p", { class: `warning ${ev.data.level}`, role: "alert" }, `Context ${ev.data.level}: ${ev.data.message}`));
        break;
      case "error":
        if (ev.data.code === ErrorCode.RequestCancelled) break; // shown as "Stopped."
        extras.append(h("p", { class: "error" }, `Error ${ev.data.code}: ${ev.data.message}`));
        break;
      default:
        break;
    }
  }

  // Tool approvals arrive for any run of this connection: one dialog at a time.
  const pending: ToolApprovalEventData[] = [];
  let asking = false;
  const offEvent = client.on("event", (ev) => {
    if (ev.event !== "tool_approval") return;
    pending.push(ev.data);
    void nextApproval();
  });
  async function nextApproval(): Promise<void> {
    if (asking) return;
    const req = pending.shift();
    if (!req) return;
    asking = true;
    const approved = await approvalDialog(req);
    try {
      await client.agent.approveTool({ approvalId: req.approvalId, approved, ...(approved ? {} : { reason: "refused in the dashboard" }) });
    } catch (e) {
      note.textContent = errorText(e);
    }
    asking = false;
    void nextApproval();
  }

  const offOpen = client.on("open", () => void loadSessions().catch(() => undefined));
  void loadSessions().catch((e) => (listError.textContent = errorText(e)));
  if (current) void select(current);
  return () => {
    offEvent();
    offOpen();
  };
}

function attachment(mime: string, base64: string, filename?: string): HTMLElement {
  const name = filename ?? "attachment";
  if (mime.startsWith("image/")) {
    return h("figure", { class: "attachment" }, h("img", { src: `data:${mime};base64,${base64}`, alt: name }), h("figcaption", {}, `${name} (${mime})`));
  }
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const url = URL.createObjectURL(new Blob([bytes], { type: mime }));
  return h("p", { class: "attachment" }, h("a", { href: url, download: name }, `Download ${name}`), ` (${mime}, ${bytes.length} bytes)`);
}

function approvalDialog(req: ToolApprovalEventData): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h("dialog", { id: "approval", "aria-labelledby": "approval-title", "aria-describedby": "approval-desc" });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      dialog.close();
      dialog.remove();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), req.timeoutMs);
    const approve = h("button", { type: "button", id: "approve", onclick: () => done(true) }, "Approve");
    const refuse = h("button", { type: "button", id: "refuse", class: "danger", onclick: () => done(false) }, "Refuse");
    fill(
      dialog,
      h("h2", { id: "approval-title" }, `Run ${req.tool}?`),
      h("p", { id: "approval-desc" }, `Session ${req.sessionId} wants to run ${req.tool} with these arguments. No answer within ${Math.round(req.timeoutMs / 1000)} s refuses it.`),
      h("pre", {}, JSON.stringify(req.args, null, 2)),
      h("div", { class: "actions" }, refuse, approve),
    );
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    refuse.focus();
  });
}
