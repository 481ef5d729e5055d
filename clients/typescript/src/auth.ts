/**
 * How the bearer token reaches the gateway. Non-browser runtimes send an `Authorization` header;
 * browsers cannot set headers on a WebSocket, so the token travels as a subprotocol offer
 * (`flynn.bearer.<base64url(token)>` beside `flynn.v1`; the server selects `flynn.v1` and never
 * echoes the token entry).
 */

import { base64url } from "./platform.js";
import type { WebSocketConstructor, WebSocketOptions } from "./socket.js";

/** `header`: `Authorization: Bearer` (needs a constructor that takes options, like `ws`); `subprotocol`: the browser form. */
export type TokenTransport = "header" | "subprotocol";

/** The subprotocol the gateway selects. */
export const FLYNN_SUBPROTOCOL = "flynn.v1";
/** Prefix of the subprotocol entry that carries the token. */
export const BEARER_SUBPROTOCOL_PREFIX = "flynn.bearer.";

/** The subprotocol entry carrying `token`: `flynn.bearer.` + base64url of its UTF-8 bytes, no padding. */
export function bearerSubprotocol(token: string): string {
  return BEARER_SUBPROTOCOL_PREFIX + base64url(token);
}

/**
 * The default transport: `subprotocol` for the host's own (browser-style) WebSocket, which cannot
 * send headers; `header` for an injected constructor such as `ws`, which can.
 */
export function defaultTokenTransport(
  ctor: WebSocketConstructor,
  hostCtor: WebSocketConstructor | undefined,
): TokenTransport {
  return ctor === hostCtor ? "subprotocol" : "header";
}

/** Constructor arguments (after the URL) that present `token` with `transport`. */
export function handshakeArgs(
  token: string | undefined,
  transport: TokenTransport,
): { protocols: string[]; options?: WebSocketOptions } {
  if (token === undefined) return { protocols: [FLYNN_SUBPROTOCOL] };
  if (transport === "subprotocol") {
    return { protocols: [FLYNN_SUBPROTOCOL, bearerSubprotocol(token)] };
  }
  return {
    protocols: [FLYNN_SUBPROTOCOL],
    options: { headers: { Authorization: `Bearer ${token}` } },
  };
}
