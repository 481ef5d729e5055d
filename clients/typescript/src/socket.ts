/**
 * The slice of the WebSocket API the client drives. Both the browser's `WebSocket` and the `ws`
 * package's class fit it, so either can be injected without this package depending on them.
 */

/** Options passed as the third constructor argument by the `header` token transport (`ws` style). */
export interface WebSocketOptions {
  headers?: Record<string, string>;
}

/**
 * A WebSocket instance. Handlers are typed with a `never` parameter so that the browser's and
 * `ws`'s own handler types are accepted; the client reads only `data`, `code` and `reason`.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
}

/** A WebSocket constructor: the browser's global one, or `ws` in Node. */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: WebSocketOptions,
) => WebSocketLike;

/** What the client reads from a message event. */
export interface MessageEventLike {
  data: unknown;
}

/** What the client reads from a close event. */
export interface CloseEventLike {
  code: number;
  reason: string;
}

/** `WebSocket.OPEN`, the same in every implementation. */
export const OPEN = 1;
