// Calls that must NOT compile. Each is preceded by `// @ts-expect-error TSnnnn: why`: tsc fails
// the build if a marked line stops erroring, and test/types.test.mjs checks that each marked line
// fails with exactly that code (so a typo cannot make a line "fail" for the wrong reason).
import WebSocket from "ws";
import { ErrorCode, FlynnClient } from "@flynn/gateway-client";

const client = new FlynnClient({ url: "ws://127.0.0.1:18800/", WebSocket });

export async function wrong(): Promise<void> {
  // @ts-expect-error TS2322: wrong param type (limit is a number)
  await client.sessions.list({ limit: "10" });
  // @ts-expect-error TS2561: unknown param member (a misspelt one)
  await client.sessions.list({ limt: 10 });
  // @ts-expect-error TS2345: missing required param (sessionId)
  await client.sessions.get({});
  // @ts-expect-error TS2554: params left out on a method that has required params
  await client.sessions.get();
  // @ts-expect-error TS2339: unknown method in a group
  await client.sessions.rename({ sessionId: "x" });
  // @ts-expect-error TS2345: unknown method name in call()
  await client.call("sessions.lst", {});
  // @ts-expect-error TS2554: call() without the params of a method that has required params
  await client.call("canvas.put");
  // @ts-expect-error TS2322: call() with a wrong param type
  await client.call("agent.send", { message: 42 });
  // @ts-expect-error TS2322: call() rejects members on a method without params
  await client.call("system.info", { verbose: true });
  // @ts-expect-error TS2322: a value outside a spec enum
  await client.system.dockerDependencyControl({ dependency: "db", action: "explode" });
  // @ts-expect-error TS2322: results are typed (content is a string)
  const tokens: number = (await client.call("agent.send", { message: "x" })).content;
  // @ts-expect-error TS2345: stream() takes only streaming methods
  client.stream("sessions.list", {});
  for await (const ev of client.agent.send({ message: "x" }).events) {
    // @ts-expect-error TS2339: events are a discriminated union (content events have no tool)
    if (ev.event === "content") console.log(ev.data.tool);
  }
  // @ts-expect-error TS2322: not a protocol error code
  const code: ErrorCode = 42;
  // @ts-expect-error TS2322: unknown token transport
  new FlynnClient({ url: "ws://x/", WebSocket, tokenTransport: "cookie" });
  // @ts-expect-error TS2345: unknown client event
  client.on("message", () => undefined);
  console.log(tokens, code);
}
