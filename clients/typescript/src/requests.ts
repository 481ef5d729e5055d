/**
 * The table of requests that have not settled yet: their frames, whether they were written, their
 * timers and abort listeners. It settles a request exactly once, whichever comes first: the
 * reply, a timeout, an abort, or the connection failing.
 */

import type { FlynnEvent, MethodName } from "./generated/protocol.js";
import { ClientErrorCode, FlynnError } from "./errors.js";
import { startTimer, stopTimer, type TimerHandle } from "./platform.js";
import type { AbortSignalLike } from "./types.js";

/** Where a request's outcome goes. */
export interface RequestSink {
  event(event: never): void;
  resolve(result: never): void;
  reject(error: unknown): void;
}

/** What a new request needs. */
export interface RequestInit {
  id: number;
  method: MethodName;
  params: unknown;
  /** 0 disables; for streaming requests it is the longest allowed silence. */
  timeoutMs: number;
  signal: AbortSignalLike | undefined;
  /** True when the method streams events (they restart the timer). */
  streaming: boolean;
  sink: RequestSink;
  /** Cancels the work on the gateway after a timeout or an abort of a request already sent. */
  cancelRemote: (() => void) | undefined;
  /** Set for agent turns (`agent.send` with an idempotency key, `agent.attach`): how to rejoin. */
  resume?: Resume | undefined;
}

/**
 * How a streaming agent request rejoins its turn after a reconnect (decision resumable-runs):
 * with the turn's `runId` known, `agent.attach` after the last `runSeq` seen; before that, the
 * same `agent.send` again (its `idempotencyKey` makes the gateway join, never run it twice).
 */
export interface Resume {
  /** The turn's session (the connection's default session once the request was written). */
  sessionId: string | undefined;
  runId: string | undefined;
  /** The last `runSeq` delivered; later duplicates are dropped. */
  lastSeq: number;
  /** The `agent.send` params to send again while the `runId` is unknown. */
  sendParams: Record<string, unknown> | undefined;
}

/** A request from the moment it is made until it settles. */
export interface Pending {
  readonly id: number;
  readonly method: MethodName;
  /** The JSON frame, serialised once (replaced by the rejoining frame when resumed). */
  frame: string;
  /** True once written to a socket: from then on it is never written again (unless resumed). */
  sent: boolean;
  readonly streaming: boolean;
  readonly resume: Resume | undefined;
}

interface Entry extends Pending {
  readonly timeoutMs: number;
  readonly sink: RequestSink;
  readonly cancelRemote: (() => void) | undefined;
  timer: TimerHandle | undefined;
  detach: () => void;
}

/** Requests by id, in the order they were made. */
export class RequestTable {
  readonly #entries = new Map<number, Entry>();

  /**
   * Registers a request, or rejects it at once (and returns undefined) when its signal has
   * already fired.
   */
  add(init: RequestInit): Pending | undefined {
    const { id, method, signal } = init;
    if (signal?.aborted === true) {
      init.sink.reject(
        new FlynnError(ClientErrorCode.Aborted, `${method} was aborted before it was sent`, { method, requestId: id, cause: signal.reason }),
      );
      return undefined;
    }
    const frame: { id: number; method: MethodName; params?: unknown } = { id, method };
    if (init.params !== undefined) frame.params = init.params;
    const entry: Entry = {
      id,
      method,
      frame: JSON.stringify(frame),
      sent: false,
      streaming: init.streaming,
      resume: init.resume,
      timeoutMs: init.timeoutMs,
      sink: init.sink,
      cancelRemote: init.cancelRemote,
      timer: undefined,
      detach: () => undefined,
    };
    if (signal !== undefined) {
      const onAbort = (): void => this.abort(id, signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      entry.detach = () => signal.removeEventListener("abort", onAbort);
    }
    this.#entries.set(id, entry);
    this.#arm(entry);
    return entry;
  }

  /** The request with `id` that was written to the socket, if it is still waiting. */
  sent(id: unknown): Pending | undefined {
    const entry = typeof id === "number" ? this.#entries.get(id) : undefined;
    return entry?.sent === true ? entry : undefined;
  }

  /** Requests not written yet, oldest first. */
  unsent(): Pending[] {
    return [...this.#entries.values()].filter((entry) => !entry.sent);
  }

  /** Written agent requests that can rejoin their turn after a reconnect. */
  resumable(): Pending[] {
    return [...this.#entries.values()].filter((entry) => entry.sent && entry.resume !== undefined);
  }

  /** Hands an event to its streaming request and restarts that request's silence timer. */
  event(id: number, event: FlynnEvent): void {
    const entry = this.#entries.get(id);
    if (entry === undefined || !entry.sent || !entry.streaming) return;
    const resume = entry.resume;
    if (resume !== undefined && event.runSeq !== undefined) {
      // Each event of the turn once, even across a rejoin.
      if (event.runSeq <= resume.lastSeq) return;
      resume.lastSeq = event.runSeq;
      if (event.runId !== undefined) resume.runId = event.runId;
    }
    this.#arm(entry);
    entry.sink.event(event as never);
  }

  /** Settles a request with its result. */
  resolve(id: number, result: unknown): void {
    this.#take(id)?.sink.resolve(result as never);
  }

  /** Settles a request with an error. */
  reject(id: number, error: FlynnError): void {
    this.#take(id)?.sink.reject(error);
  }

  /** Aborts a request: rejects it with `aborted`, cancelling its work on the gateway when it was sent. */
  abort(id: number, reason: unknown): void {
    const entry = this.#take(id);
    if (entry === undefined) return;
    const remote = entry.sent && entry.cancelRemote !== undefined;
    if (remote) entry.cancelRemote?.();
    entry.sink.reject(
      new FlynnError(ClientErrorCode.Aborted, `${entry.method} was aborted${remote ? "; agent.cancel was sent for its session" : ""}`, {
        method: entry.method,
        requestId: entry.id,
        cause: reason,
      }),
    );
  }

  /** Rejects every request `filter` selects (default: all) with the error `error` makes for it. */
  rejectAll(error: (pending: Pending) => FlynnError, filter: (pending: Pending) => boolean = () => true): void {
    for (const entry of [...this.#entries.values()]) {
      if (filter(entry)) this.reject(entry.id, error(entry));
    }
  }

  /** Removes a request, stopping its timer and abort listener. */
  #take(id: number): Entry | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    this.#entries.delete(id);
    stopTimer(entry.timer);
    entry.timer = undefined;
    entry.detach();
    return entry;
  }

  /** (Re)starts the timeout of a request. */
  #arm(entry: Entry): void {
    stopTimer(entry.timer);
    entry.timer = undefined;
    if (entry.timeoutMs <= 0) return;
    entry.timer = startTimer(entry.timeoutMs, () => {
      if (this.#take(entry.id) === undefined) return;
      if (entry.sent) entry.cancelRemote?.();
      const what = entry.streaming ? "no frame" : "no reply";
      entry.sink.reject(
        new FlynnError(ClientErrorCode.Timeout, `${entry.method} timed out: ${what} within ${entry.timeoutMs} ms`, {
          method: entry.method,
          requestId: entry.id,
        }),
      );
    });
  }
}
