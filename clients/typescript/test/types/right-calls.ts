// Calls that must compile, with the types they must produce. Compiled by `tsc -p tsconfig.types.json`
// against the published declarations (dist/), with the DOM and Node typings both present.
import WebSocket from "ws";
import {
  ClientErrorCode,
  ErrorCode,
  FlynnClient,
  FlynnError,
  type AgentSendResult,
  type EventOf,
  type FlynnEvent,
  type SessionsListResult,
  type StreamRun,
  type SystemInfoResult,
} from "@flynn/gateway-client";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T>(_value: T): void {}
function assertTrue<T extends true>(): void {}

// Both WebSocket constructors fit: `ws` (Node) and the DOM's (browsers).
const node = new FlynnClient({ url: "ws://127.0.0.1:18800/", token: "t", WebSocket, tokenTransport: "header" });
const browser = new FlynnClient({
  url: "wss://gateway.example/",
  WebSocket: globalThis.WebSocket,
  requestTimeoutMs: 5_000,
  reconnect: { initialDelayMs: 100, maxDelayMs: 5_000, jitter: 0.3 },
  onSeqGap: ({ expected, got }) => console.log(expected, got),
});
new FlynnClient({ url: "ws://x/", reconnect: false });

export async function typed(): Promise<void> {
  expectType<SessionsListResult>(await node.sessions.list({ limit: 10, includePersisted: true }));
  expectType<SessionsListResult>(await node.sessions.list());
  expectType<SystemInfoResult>(await browser.system.info());
  expectType<SystemInfoResult>(await node.call("system.info"));
  expectType<SessionsListResult>(await node.call("sessions.list", { frontend: "ws" }, { timeoutMs: 1_000 }));
  await node.node.push_token.set({ provider: "fcm", token: "abcdefgh" });
  await node.canvas.put({ sessionId: "s", artifactId: "a", type: "note", content: { text: "x" } });

  // agent.send: awaitable, iterable, with callbacks and an AbortSignal (DOM or Node's).
  const controller = new AbortController();
  const run = node.agent.send(
    { message: "hi", sessionId: "s" },
    { signal: controller.signal, timeoutMs: 60_000, onEvent: (ev) => expectType<EventOf<"agent.send">>(ev) },
  );
  expectType<StreamRun<"agent.send">>(run);
  expectType<AgentSendResult>(await run);
  expectType<AgentSendResult>(await run.result);
  for await (const ev of run.events) {
    if (ev.event === "content") expectType<string>(ev.data.text);
    if (ev.event === "tool_approval") await node.agent.approveTool({ approvalId: ev.data.approvalId, approved: true });
    if (ev.event === "error") expectType<number>(ev.data.code);
  }
  expectType<AgentSendResult>(await node.call("agent.send", { message: "x" }));
  const streamed = node.stream("agent.send", { message: "x" });
  run.cancel("stop");
  assertTrue<Equal<EventOf<"agent.send">, FlynnEvent>>();

  // Errors: protocol codes and client codes, narrowed by comparison.
  try {
    await streamed;
  } catch (error) {
    if (error instanceof FlynnError) {
      if (error.code === ErrorCode.AgentBusy) console.log(error.data);
      if (error.code === ClientErrorCode.ConnectionLost) console.log("decide whether to retry");
      if (error.isProtocolError()) expectType<ErrorCode>(error.code);
    }
  }

  // Connection events.
  const off = node.on("close", ({ code, willReconnect }) => console.log(code, willReconnect));
  node.on("reconnecting", ({ attempt, delayMs }) => console.log(attempt, delayMs));
  node.on("event", (ev) => expectType<FlynnEvent>(ev));
  node.on("state", (state) => expectType<"idle" | "connecting" | "open" | "reconnecting" | "closed">(state));
  off();
  await node.close();
}
