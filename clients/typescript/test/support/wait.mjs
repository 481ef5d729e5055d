// Waiting on events, with a deadline so a missing event fails the test instead of hanging it.

/** Resolves with the next `name` event of `client` that satisfies `predicate`. The default
 * deadline is a liveness bound far above what any load makes an event take. */
export function nextEvent(client, name, predicate = () => true, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no '${name}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = client.on(name, (payload) => {
      if (!predicate(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** Rejects when `promise` has not settled within `ms`. */
export function within(promise, ms, what = "operation") {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
