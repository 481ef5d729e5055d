import type { FlynnClient } from "../../clients/typescript/src/index.js";

export interface Ctx {
  client: FlynnClient;
  main: HTMLElement;
}

/** Renders into `root` (which already holds the view's h1); returns its cleanup. */
export type View = (root: HTMLElement, ctx: Ctx) => (() => void) | void;

/**
 * Runs `load` now, every `ms`, and after each reconnect; returns the cleanup. Errors show in
 * `out` (role=alert) instead of the content.
 */
export function refreshing(ctx: Ctx, ms: number, load: () => Promise<void>, onError: (e: unknown) => void): () => void {
  let stopped = false;
  const run = () => {
    if (!stopped) load().catch((e) => !stopped && onError(e));
  };
  run();
  const timer = setInterval(run, ms);
  const off = ctx.client.on("open", () => run());
  return () => {
    stopped = true;
    clearInterval(timer);
    off();
  };
}
