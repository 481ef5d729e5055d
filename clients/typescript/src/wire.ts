/** Reading gateway frames: a reply `{id, result}` / `{id, error}` or an event `{id, event, data, seq}`. */

import type { FlynnEvent, RequestId } from "./generated/protocol.js";

/** `error` member of an error reply. */
export interface WireError {
  code: number;
  message: string;
  data?: unknown;
}

/** A reply frame; `id` is null only for connection-level errors (-4/-5) and unreadable requests (-1). */
export type ResponseFrame = { id: RequestId; result: unknown } | { id: RequestId | null; error: WireError };

/** What a text frame turned out to be. */
export type ParsedFrame =
  | { kind: "event"; event: FlynnEvent }
  | { kind: "response"; response: ResponseFrame }
  | { kind: "bad"; reason: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isId(value: unknown): value is RequestId {
  return typeof value === "number" || typeof value === "string";
}

/**
 * Classifies a text frame. Unknown members are ignored (server objects are open), and an event
 * name this client does not know is passed on as is, so a newer gateway does not break it.
 */
export function parseFrame(text: string): ParsedFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: "bad", reason: "the gateway sent a frame that is not JSON" };
  }
  if (!isRecord(value)) return { kind: "bad", reason: "the gateway sent a frame that is not a JSON object" };
  if (typeof value["event"] === "string") {
    if (!isId(value["id"])) return { kind: "bad", reason: "the gateway sent an event frame without a valid id" };
    return { kind: "event", event: value as unknown as FlynnEvent };
  }
  const id = value["id"];
  if ("error" in value) {
    const error = value["error"];
    if (!isRecord(error) || typeof error["code"] !== "number" || typeof error["message"] !== "string") {
      return { kind: "bad", reason: "the gateway sent an error frame without a numeric code and a message" };
    }
    if (id !== null && !isId(id)) return { kind: "bad", reason: "the gateway sent an error frame with an invalid id" };
    const wire: WireError = { code: error["code"], message: error["message"] };
    if ("data" in error) wire.data = error["data"];
    return { kind: "response", response: { id, error: wire } };
  }
  if ("result" in value) {
    if (!isId(id)) return { kind: "bad", reason: "the gateway sent a result frame without a valid id" };
    return { kind: "response", response: { id, result: value["result"] } };
  }
  return { kind: "bad", reason: "the gateway sent a frame that is neither a reply nor an event" };
}
