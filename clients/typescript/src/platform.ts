/**
 * The few host APIs the client uses (timers, base64, text codecs, the global WebSocket), typed here
 * so the package compiles and ships without DOM or Node typings and runs unchanged in both.
 */

import type { WebSocketConstructor } from "./socket.js";

interface Host {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  queueMicrotask(callback: () => void): void;
  btoa(data: string): string;
  TextEncoder: new () => { encode(input: string): Uint8Array };
  TextDecoder: new () => { decode(input: Uint8Array): string };
  WebSocket?: WebSocketConstructor;
}

const host = globalThis as unknown as Host;

/** An opaque timer handle (a number in browsers, an object in Node). */
export type TimerHandle = unknown;

/** Runs `callback` once after `ms` milliseconds. */
export function startTimer(ms: number, callback: () => void): TimerHandle {
  return host.setTimeout(callback, ms);
}

/** Cancels a timer started by {@link startTimer}; `undefined` is ignored. */
export function stopTimer(handle: TimerHandle | undefined): void {
  if (handle !== undefined) host.clearTimeout(handle);
}

/** Runs `callback` after the current task; used to report listener errors without unwinding the client. */
export function later(callback: () => void): void {
  host.queueMicrotask(callback);
}

/** Base64url (RFC 4648 §5, no padding) of the UTF-8 bytes of `text`. */
export function base64url(text: string): string {
  const bytes = new host.TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return host.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes a binary WebSocket payload (ArrayBuffer or a typed array such as Node's Buffer) as UTF-8. */
export function decodeUtf8(data: ArrayBuffer | Uint8Array): string {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  return new host.TextDecoder().decode(bytes);
}

/** The host's global WebSocket constructor, if it has one (browsers, Deno, Node 22+). */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return typeof host.WebSocket === "function" ? host.WebSocket : undefined;
}
