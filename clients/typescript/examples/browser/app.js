// Serve index.html, app.js, app.css and flynn-gateway-client.min.js from the gateway
// (server.dashboard_dir) and open index.html#token=YOUR_TOKEN. No inline script or style: the
// gateway serves pages with a strict Content-Security-Policy.
import { FlynnClient, FlynnError } from "./flynn-gateway-client.min.js";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get("token") ?? undefined;
const client = new FlynnClient({
  url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`,
  token, // a browser WebSocket cannot send headers: the token goes as a subprotocol
});
client.on("state", (state) => ($("status").textContent = state));
$("auth").textContent = client.tokenTransport;

try {
  const run = client.agent.send({ message: "Hello from the browser" });
  for await (const event of run.events) {
    if (event.event === "content") $("stream").textContent += event.data.text;
  }
  const result = await run.result;
  $("result").textContent = `Answer: ${result.content} (${result.usage.outputTokens} tokens)`;
} catch (error) {
  $("result").textContent = error instanceof FlynnError ? `Error ${error.code}: ${error.message}` : String(error);
}
