/** A small typed event emitter; a throwing listener is reported after the current task instead of unwinding the client. */

import { later } from "./platform.js";

/** A listener of one event. */
export type Listener<T> = (payload: T) => void;

/** Emits the events of the map `E` (event name -> payload type). */
export class Emitter<E extends object> {
  readonly #listeners = new Map<keyof E, Set<Listener<never>>>();

  /** Adds `listener` for `name`; returns a function that removes it. */
  on<K extends keyof E>(name: K, listener: Listener<E[K]>): () => void {
    let set = this.#listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(name, set);
    }
    set.add(listener as Listener<never>);
    return () => this.off(name, listener);
  }

  /** Like {@link on}, but the listener runs at most once. */
  once<K extends keyof E>(name: K, listener: Listener<E[K]>): () => void {
    const off = this.on(name, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  /** Removes `listener` for `name`. */
  off<K extends keyof E>(name: K, listener: Listener<E[K]>): void {
    this.#listeners.get(name)?.delete(listener as Listener<never>);
  }

  /** Calls every listener of `name` with `payload`. */
  emit<K extends keyof E>(name: K, payload: E[K]): void {
    const set = this.#listeners.get(name);
    if (set === undefined) return;
    for (const listener of [...set]) {
      safeCall(listener as Listener<E[K]>, payload);
    }
  }
}

/** Calls `listener`; an exception is rethrown after the current task so the caller's state stays consistent. */
export function safeCall<T>(listener: Listener<T>, payload: T): void {
  try {
    listener(payload);
  } catch (error) {
    later(() => {
      throw error;
    });
  }
}
