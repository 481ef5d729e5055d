/**
 * `@flynn/gateway-client`: a typed client of the Flynn gateway protocol for browsers and Node.
 * Everything protocol-shaped (types, method and event names, error codes) comes from the
 * generated module, which is written from the spec and never edited by hand.
 */

export * from "./generated/protocol.js";
export { FlynnClient, type ClientEvents, type ClientMethodGroups, type FlynnClientOptions } from "./client.js";
export { ClientErrorCode, FlynnError, isFlynnError, type FlynnErrorCode, type FlynnErrorInit } from "./errors.js";
export { StreamRun } from "./stream.js";
export { bearerSubprotocol, FLYNN_SUBPROTOCOL, type TokenTransport } from "./auth.js";
export { backoffDelay, type ReconnectOptions } from "./backoff.js";
export type { WebSocketConstructor, WebSocketLike, WebSocketOptions } from "./socket.js";
export type {
  AbortSignalLike,
  CallArgs,
  CallParams,
  CallOptions,
  CloseInfo,
  ConnectionState,
  EventOf,
  SeqGap,
  StreamingMethod,
  StreamOptions,
} from "./types.js";
