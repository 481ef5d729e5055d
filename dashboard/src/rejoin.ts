// Rejoining a running turn after a page reload (decision resumable-runs). While a turn streams,
// the tab keeps, per session, the turn's runId, the last runSeq it showed and the answer text
// shown so far (sessionStorage: this tab only, gone with it). On load, a session whose
// sessions.get shows a running runId is attached after that runSeq with the saved text restored,
// so the rest of the stream shows exactly once; a turn this tab never saw is attached from its
// first kept event. A turn that ended meanwhile needs nothing: the history holds its answer.
import type { FlynnEvent } from "../../clients/typescript/src/index.js";

/** Where the tab is in a turn. */
export interface RunPosition {
  runId: string;
  runSeq: number;
  /** The answer text shown up to `runSeq`. */
  text: string;
}

const storageKey = (sessionId: string) => `flynn.run.${sessionId}`;

/** The turn and its sequence number carried by an event frame (frame members, not in `data`). */
export function runTag(ev: FlynnEvent): { runId: string; runSeq: number } | undefined {
  return ev.runId !== undefined && ev.runSeq !== undefined ? { runId: ev.runId, runSeq: ev.runSeq } : undefined;
}

export function saveRun(sessionId: string, position: RunPosition): void {
  try {
    sessionStorage.setItem(storageKey(sessionId), JSON.stringify(position));
  } catch {
    // Storage full or disabled: a reload then replays the turn from its first kept event.
  }
}

export function forgetRun(sessionId: string): void {
  sessionStorage.removeItem(storageKey(sessionId));
}

function savedRun(sessionId: string): RunPosition | undefined {
  try {
    const v = JSON.parse(sessionStorage.getItem(storageKey(sessionId)) ?? "null") as Partial<RunPosition> | null;
    if (typeof v?.runId === "string" && typeof v.runSeq === "number" && typeof v.text === "string") return { runId: v.runId, runSeq: v.runSeq, text: v.text };
  } catch {
    // Unreadable: start from the first kept event.
  }
  return undefined;
}

/** Where to rejoin `runId`: after what this tab already showed of it, else from the start. */
export function resumePoint(sessionId: string, runId: string): RunPosition {
  const saved = savedRun(sessionId);
  return saved?.runId === runId ? saved : { runId, runSeq: 0, text: "" };
}
