/** Reconnect delays: exponential growth, capped, with random jitter so clients do not reconnect in lockstep. */

/** Reconnect policy. */
export interface ReconnectOptions {
  /** Delay before the first reconnect attempt (default 250 ms). */
  initialDelayMs?: number;
  /** Upper bound of the delay (default 10 000 ms). */
  maxDelayMs?: number;
  /**
   * Fraction of the delay that is randomised, 0..1 (default 0.5): the delay is drawn uniformly from
   * `[d * (1 - jitter), d]` where `d` is the exponential delay.
   */
  jitter?: number;
  /** Attempts before giving up (default: unlimited). */
  maxAttempts?: number;
}

/** A policy with every default filled in. */
export type ResolvedReconnect = Required<ReconnectOptions>;

/** Fills in defaults and checks ranges, naming the option that is wrong. */
export function resolveReconnect(options: ReconnectOptions = {}): ResolvedReconnect {
  const resolved: ResolvedReconnect = {
    initialDelayMs: options.initialDelayMs ?? 250,
    maxDelayMs: options.maxDelayMs ?? 10_000,
    jitter: options.jitter ?? 0.5,
    maxAttempts: options.maxAttempts ?? Number.POSITIVE_INFINITY,
  };
  if (!(resolved.initialDelayMs >= 0)) {
    throw new RangeError("reconnect.initialDelayMs must be a number >= 0");
  }
  if (!(resolved.maxDelayMs >= resolved.initialDelayMs)) {
    throw new RangeError("reconnect.maxDelayMs must be >= reconnect.initialDelayMs");
  }
  if (!(resolved.jitter >= 0 && resolved.jitter <= 1)) {
    throw new RangeError("reconnect.jitter must be between 0 and 1");
  }
  if (!(resolved.maxAttempts >= 1)) {
    throw new RangeError("reconnect.maxAttempts must be >= 1");
  }
  return resolved;
}

/**
 * Delay before reconnect attempt `attempt` (1 for the first): `initialDelayMs * 2^(attempt-1)`,
 * capped at `maxDelayMs`, then reduced by up to `jitter` of itself. `random` returns 0..1.
 */
export function backoffDelay(
  attempt: number,
  policy: ResolvedReconnect,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** exponent);
  return Math.round(base * (1 - policy.jitter * random()));
}
