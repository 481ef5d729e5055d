// A TCP proxy on 127.0.0.1 that cuts connections: each connection forwards the daemon's bytes up
// to a budget (`budget()` per connection, null: never cut), then drops both sides, as a sleeping
// laptop, a network change or an idle-cutting proxy would. `rng(seed)` gives replayable budgets.
import { connect, createServer } from "node:net";

/** xorshift32, seeded: the cut points of a run can be replayed with CUT_SEED. */
export function rng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

/** The seed of this run: $CUT_SEED, else the clock (printed, so a failure can be replayed). */
export function cutSeed() {
  const seed = Number(process.env.CUT_SEED ?? Date.now() % 2 ** 31);
  console.log(`CUT_SEED=${seed}`);
  return seed;
}

/** Starts the proxy in front of `upstreamPort`; resolves with `{ port, close() }`. */
export function startCuttingProxy(upstreamPort, budget) {
  const sockets = new Set();
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    let left = budget();
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      if (left === null) {
        client.write(chunk);
        return;
      }
      const n = Math.min(left, chunk.length);
      client.write(chunk.subarray(0, n));
      left -= n;
      if (left === 0) cut();
    });
    for (const s of [client, upstream]) {
      s.on("error", cut);
      s.on("close", () => {
        sockets.delete(s);
        cut();
      });
    }
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        port: server.address().port,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
