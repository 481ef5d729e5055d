/** Types derived from the generated protocol module for the client's public surface. */

import type { FlynnEvent, MethodName, Methods, ParamsOf } from "./generated/protocol.js";
import type { FlynnError } from "./errors.js";

/** Methods that stream events before their result (today: `agent.send`). */
export type StreamingMethod = {
  [M in MethodName]: [Methods[M]["events"]] extends [never] ? never : M;
}[MethodName];

/** The events method `M` may send, as a discriminated union on `event`. */
export type EventOf<M extends MethodName> = Extract<FlynnEvent, { event: Methods[M]["events"] }>;

/**
 * The minimal AbortSignal the client needs; the browser's and Node's `AbortSignal` both fit, so
 * callers pass `controller.signal` directly.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/** Per-call options. */
export interface CallOptions {
  /**
   * Reject with code `timeout` when no reply comes within this many ms (default: the client's
   * `requestTimeoutMs`; 0 disables). For streaming calls it is the longest allowed silence
   * between frames of the call, so a long run that keeps streaming never times out.
   */
  timeoutMs?: number;
  /** Aborts the call: it rejects with code `aborted`; for `agent.send` the run is also cancelled on the gateway. */
  signal?: AbortSignalLike;
}

/** Options of a streaming call. */
export interface StreamOptions<M extends StreamingMethod = StreamingMethod> extends CallOptions {
  /** Called with each event of the call, in order, as it arrives. */
  onEvent?: (event: EventOf<M>) => void;
}

/**
 * Params as `call()` checks them: a method without params takes only `{}` (an empty interface
 * would accept any object, so `{ typo: 1 }` would pass unnoticed).
 */
export type CallParams<M extends MethodName> = [keyof ParamsOf<M>] extends [never] ? Record<string, never> : ParamsOf<M>;

/** Arguments after the method name: params are optional exactly when the method has no required param. */
export type CallArgs<M extends MethodName> = Methods[M]["paramsOptional"] extends true
  ? [params?: CallParams<M>, options?: CallOptions]
  : [params: CallParams<M>, options?: CallOptions];

/** Connection states. `closed` is final (after `close()`); `idle` connects again on the next call. */
export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** A jump in the per-connection event counter: events were lost between `expected` and `got`. */
export interface SeqGap {
  expected: number;
  got: number;
}

/** Payload of the `close` event. */
export interface CloseInfo {
  /** WebSocket close code (1001 when the gateway shuts down, 1008 after an auth failure, 1006 when the link broke). */
  code: number;
  reason: string;
  /** True when the client will try to reconnect. */
  willReconnect: boolean;
  /** The connection-level error that caused the close, if any (for example -5 AuthFailed). */
  error?: FlynnError;
}
