/**
 * An append-only sequence that can be iterated asynchronously any number of times, each iteration
 * starting from the first item: events that arrive before anyone iterates are not lost.
 */

/** Items, then either an end or a failure. */
export class ReplayQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #ended = false;
  #failure: { error: unknown } | undefined;
  #wake = new Set<() => void>();

  /** Appends an item (ignored once the queue has ended). */
  push(item: T): void {
    if (this.#ended) return;
    this.#items.push(item);
    this.#notify();
  }

  /** Ends the sequence normally. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#notify();
  }

  /** Ends the sequence with `error`: iterators throw it after the items before it. */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#failure = { error };
    this.end();
  }

  /** Items so far. */
  get items(): readonly T[] {
    return this.#items;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    let index = 0;
    let stopped = false;
    return {
      next: async (): Promise<IteratorResult<T>> => {
        for (;;) {
          if (stopped) return { done: true, value: undefined };
          if (index < this.#items.length) {
            return { done: false, value: this.#items[index++] as T };
          }
          if (this.#failure !== undefined) {
            stopped = true;
            throw this.#failure.error;
          }
          if (this.#ended) return { done: true, value: undefined };
          await new Promise<void>((resolve) => this.#wake.add(resolve));
        }
      },
      return: async (): Promise<IteratorResult<T>> => {
        stopped = true;
        return { done: true, value: undefined };
      },
    };
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = new Set();
    for (const resolve of wake) resolve();
  }
}
