// Streams one agent run from Node 20 and prints it.
// Run: FLYNN_URL=ws://127.0.0.1:18800/ FLYNN_TOKEN=your-token node examples/node.mjs "Hello"
import WebSocket from "ws";
import { ErrorCode, FlynnClient, FlynnError } from "@flynn/gateway-client";

const client = new FlynnClient({
  url: process.env.FLYNN_URL ?? "ws://127.0.0.1:18800/",
  token: process.env.FLYNN_TOKEN,
  WebSocket, // Node 20 has no global WebSocket; `ws` also lets the token travel as a header
  requestTimeoutMs: 15_000,
  reconnect: { initialDelayMs: 250, maxDelayMs: 10_000, jitter: 0.5 },
});
client.on("reconnecting", ({ attempt, delayMs }) => console.error(`reconnecting (attempt ${attempt}) in ${delayMs} ms`));
client.on("seqGap", ({ expected, got }) => console.error(`events ${expected}..${got - 1} were lost`));

try {
  const info = await client.system.info();
  console.log(`connected to Flynn ${info.version}`);
  const { sessionId } = await client.sessions.create({ sessionId: "example:node" });

  const run = client.agent.send({ sessionId, message: process.argv[2] ?? "Hello from Node" });
  for await (const event of run.events) {
    if (event.event === "content") process.stdout.write(event.data.text);
    if (event.event === "tool_start") console.log(`\n[running ${event.data.tool}]`);
  }
  const result = await run.result;
  console.log(`\nanswer: ${result.content}`);
  console.log(`tokens: ${result.usage.inputTokens} in, ${result.usage.outputTokens} out`);
} catch (error) {
  if (error instanceof FlynnError && error.code === ErrorCode.AuthFailed) {
    console.error("the gateway rejected the token: set FLYNN_TOKEN");
  } else {
    console.error(error);
  }
  process.exitCode = 1;
} finally {
  await client.close();
}
