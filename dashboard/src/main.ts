// The dashboard's shell: sign-in, the connection status, the navigation and the views.
import { ErrorCode, FlynnClient, isFlynnError } from "../../clients/typescript/src/index.js";
import { chatView } from "./chat.js";
import { byId, errorText, field, fill, h } from "./dom.js";
import { OPERATOR_VIEWS } from "./ops.js";
import type { Ctx, View } from "./view.js";

const TOKEN_KEY = "flynn.token";
const VIEWS: { id: string; title: string; view: View }[] = [{ id: "chat", title: "Chat", view: chatView }, ...OPERATOR_VIEWS];

const app = byId("app");
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;

function storedToken(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** The sign-in page; `problem` says why it is shown. */
function signIn(problem: string): void {
  document.title = "Sign in · Flynn";
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to Flynn"),
    problem ? h("p", { class: "error", role: "alert", id: "signin-error" }, problem) : null,
    h("p", {}, "This gateway needs its token (server.token or FLYNN_SERVER_TOKEN). It is kept for this tab only."),
    field("Token", input),
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value);
    void start();
  });
  fill(app, h("main", { id: "main" }, form));
  input.focus();
}

/** The gateway could not be reached; retries on its own. */
function unreachable(detail: string): void {
  document.title = "Gateway unreachable · Flynn";
  let seconds = 5;
  const count = h("span", {}, String(seconds));
  const retry = () => {
    clearInterval(timer);
    void start();
  };
  const timer = setInterval(() => {
    seconds -= 1;
    count.textContent = String(seconds);
    if (seconds <= 0) retry();
  }, 1000);
  fill(
    app,
    h(
      "main",
      { id: "main" },
      h(
        "section",
        { class: "card", "aria-labelledby": "down-title" },
        h("h1", { id: "down-title" }, "The gateway is unreachable"),
        h("p", { role: "alert" }, `No connection to ${wsUrl}: ${detail}`),
        h("p", {}, "Is flynn-gateway running? Trying again in ", count, " s."),
        h("button", { type: "button", onclick: retry }, "Try again now"),
      ),
    ),
  );
}

async function start(): Promise<void> {
  const token = storedToken();
  const client = new FlynnClient({
    url: wsUrl,
    ...(token !== undefined ? { token } : {}),
    requestTimeoutMs: 30_000,
    reconnect: { initialDelayMs: 250, maxDelayMs: 5_000, jitter: 0.3 },
  });
  fill(app, h("main", { id: "main" }, h("p", { class: "card", role: "status" }, "Connecting…")));
  try {
    await client.connect();
  } catch (error) {
    void client.close();
    if (isFlynnError(error) && error.code === ErrorCode.AuthFailed) {
      sessionStorage.removeItem(TOKEN_KEY);
      signIn("The gateway refused this token. Check it and try again.");
    } else if (isFlynnError(error) && error.code === ErrorCode.AuthRequired) {
      signIn(token === undefined ? "" : "The gateway wants a token.");
    } else {
      unreachable(errorText(error));
    }
    return;
  }
  shell(client);
}

function shell(client: FlynnClient): void {
  const status = h("span", { id: "conn", class: "conn open", role: "status" }, "connected");
  client.on("state", (state) => {
    status.textContent = state === "open" ? "connected" : state;
    status.className = `conn ${state}`;
  });
  const nav = h(
    "nav",
    { "aria-label": "Views" },
    h("ul", {}, VIEWS.map((v) => h("li", {}, h("a", { href: `#/${v.id}`, id: `nav-${v.id}` }, v.title)))),
  );
  const main = h("main", { id: "main", tabindex: -1 });
  const signOut = h("button", { type: "button", class: "link" }, "Sign out");
  signOut.addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    void client.close();
    location.hash = "";
    void start();
  });
  fill(
    app,
    h("a", { href: "#main", class: "skip", onclick: (e: Event) => { e.preventDefault(); main.focus(); } }, "Skip to content"),
    h(
      "header",
      { class: "top" },
      h("p", { class: "brand" }, "Flynn"),
      h("p", { class: "info" }, `gateway ${client.info?.version ?? ""} · `, status),
      storedToken() !== undefined ? signOut : null,
    ),
    nav,
    main,
  );

  let cleanup: (() => void) | void;
  const route = () => {
    const id = location.hash.replace(/^#\/?/, "") || "chat";
    const view = VIEWS.find((v) => v.id === id) ?? VIEWS[0]!;
    if (cleanup) cleanup();
    for (const a of nav.querySelectorAll("a")) a.removeAttribute("aria-current");
    byId(`nav-${view.id}`).setAttribute("aria-current", "page");
    document.title = `${view.title} · Flynn`;
    fill(main, h("h1", {}, view.title));
    const ctx: Ctx = { client, main };
    cleanup = view.view(main, ctx);
  };
  window.addEventListener("hashchange", route);
  route();
}

void start();
