/**
 * `StreamRun`: a streaming call in progress. It is both a promise of the final result (`await run`
 * or `run.result`) and a replayable async sequence of the call's events (`for await (... of run.events)`).
 */

import type { RequestId, ResultOf } from "./generated/protocol.js";
import { safeCall } from "./emitter.js";
import { ReplayQueue } from "./replay-queue.js";
import type { EventOf, StreamingMethod } from "./types.js";

/** The side of a run the client feeds. */
export interface StreamSink<M extends StreamingMethod> {
  event(event: EventOf<M>): void;
  resolve(result: ResultOf<M>): void;
  reject(error: unknown): void;
}

/** A streaming call in progress. */
export class StreamRun<M extends StreamingMethod> implements PromiseLike<ResultOf<M>> {
  /** The method called. */
  readonly method: M;
  /** The request id on the wire. */
  readonly id: RequestId;
  /**
   * The final result. It rejects with a `FlynnError` when the call fails, is aborted, times out or
   * loses its connection. A rejection nobody awaits is not reported as unhandled: iterating
   * `events` alone is a complete way to consume a run.
   */
  readonly result: Promise<ResultOf<M>>;
  /**
   * The events of the call in arrival order. Every iteration starts from the first event; it ends
   * when the result arrives and throws the call's error when it fails.
   */
  readonly events: AsyncIterable<EventOf<M>>;
  readonly #cancel: (reason?: unknown) => void;

  private constructor(
    method: M,
    id: RequestId,
    result: Promise<ResultOf<M>>,
    events: AsyncIterable<EventOf<M>>,
    cancel: (reason?: unknown) => void,
  ) {
    this.method = method;
    this.id = id;
    this.result = result;
    this.events = events;
    this.#cancel = cancel;
  }

  /**
   * Makes a run and the sink that feeds it. `cancel` is what `run.cancel()` does; `onEvent` is
   * the caller's callback.
   */
  static create<M extends StreamingMethod>(
    method: M,
    id: RequestId,
    cancel: (reason?: unknown) => void,
    onEvent?: (event: EventOf<M>) => void,
  ): { run: StreamRun<M>; sink: StreamSink<M> } {
    const events = new ReplayQueue<EventOf<M>>();
    let settle!: { resolve: (value: ResultOf<M>) => void; reject: (error: unknown) => void };
    const result = new Promise<ResultOf<M>>((resolve, reject) => {
      settle = { resolve, reject };
    });
    result.catch(() => undefined);
    const run = new StreamRun(method, id, result, events, cancel);
    const sink: StreamSink<M> = {
      event(event) {
        events.push(event);
        if (onEvent !== undefined) safeCall(onEvent, event);
      },
      resolve(value) {
        events.end();
        settle.resolve(value);
      },
      reject(error) {
        events.fail(error);
        settle.reject(error);
      },
    };
    return { run, sink };
  }

  /** Cancels the call, like aborting its signal: it rejects with code `aborted` and `agent.send` runs are cancelled on the gateway. */
  cancel(reason?: unknown): void {
    this.#cancel(reason);
  }

  then<T1 = ResultOf<M>, T2 = never>(
    onfulfilled?: ((value: ResultOf<M>) => T1 | PromiseLike<T1>) | null,
    onrejected?: ((reason: unknown) => T2 | PromiseLike<T2>) | null,
  ): Promise<T1 | T2> {
    return this.result.then(onfulfilled, onrejected);
  }
}
