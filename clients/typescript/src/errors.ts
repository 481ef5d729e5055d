/**
 * `FlynnError`: every failure the client reports, whether the gateway sent it (a protocol error
 * code such as -5 or 4) or the client detected it (a lost connection, a timeout, an abort).
 */

import { ERROR_NAMES, ErrorCode, type MethodName, type RequestId } from "./generated/protocol.js";

/** Codes of failures detected by the client itself; strings, so they never collide with protocol codes. */
export const ClientErrorCode = {
  /** The request was sent, but the connection closed before its reply. It was not retried. */
  ConnectionLost: "connection_lost",
  /** No reply (for streams: no frame) within the request timeout. */
  Timeout: "timeout",
  /** The caller's AbortSignal fired. */
  Aborted: "aborted",
  /** No connection could be opened, or reconnecting gave up. */
  NotConnected: "not_connected",
  /** `close()` was called on the client. */
  Closed: "closed",
  /** The gateway sent a frame the client could not read. */
  BadFrame: "bad_frame",
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** A protocol error code (see `ErrorCode`) or a client-side one (see `ClientErrorCode`). */
export type FlynnErrorCode = ErrorCode | ClientErrorCode;

/** Details of a {@link FlynnError}. */
export interface FlynnErrorInit<D = unknown> {
  data?: D;
  method?: MethodName;
  requestId?: RequestId;
  cause?: unknown;
}

/** An error reported by the gateway or detected by the client; `code` tells which. */
export class FlynnError<D = unknown> extends Error {
  /** Protocol code (number) or client code (string). */
  readonly code: FlynnErrorCode;
  /** `error.data` sent by the gateway, if any (for example `{queue}` with code 3). */
  readonly data: D | undefined;
  /** Method of the request that failed, when the error belongs to one. */
  readonly method: MethodName | undefined;
  /** Id of the request that failed, when the error belongs to one. */
  readonly requestId: RequestId | undefined;

  constructor(code: FlynnErrorCode, message: string, init: FlynnErrorInit<D> = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "FlynnError";
    this.code = code;
    this.data = init.data;
    this.method = init.method;
    this.requestId = init.requestId;
  }

  /** Name of the code: `AuthFailed`, `RequestCancelled`, ... for protocol codes, the code itself otherwise. */
  get codeName(): string {
    return typeof this.code === "number" ? (ERROR_NAMES[this.code] ?? `Error${this.code}`) : this.code;
  }

  /** True when the gateway sent this error (its code is a protocol code). */
  isProtocolError(): this is FlynnError<D> & { code: ErrorCode } {
    return typeof this.code === "number";
  }

  /** True when the gateway rejected the credentials (-4 missing, -5 wrong). */
  isAuthError(): boolean {
    return this.code === ErrorCode.AuthRequired || this.code === ErrorCode.AuthFailed;
  }
}

/** Type guard for {@link FlynnError}, also across bundle copies (checks the name and code). */
export function isFlynnError(value: unknown): value is FlynnError {
  return (
    value instanceof FlynnError ||
    (value instanceof Error && value.name === "FlynnError" && "code" in value)
  );
}
