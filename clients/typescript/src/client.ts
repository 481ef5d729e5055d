/**
 * `FlynnClient`: one WebSocket connection to a Flynn gateway, typed from the spec.
 *
 * Rules it keeps:
 * - a request is written at most once: when a connection drops, requests already sent reject with
 *   `connection_lost` and are never replayed (the application decides whether to retry); requests
 *   made while no connection is open wait for the next one and are sent then, once. The exception
 *   is an agent turn (`agent.send`, which carries an `idempotencyKey` by default, and
 *   `agent.attach`): it rejoins its turn on the next connection (`agent.attach` after the last
 *   `runSeq` it saw, or the same keyed send), so its stream goes on with each event once;
 * - reconnecting (exponential backoff with jitter) happens only after a connection that was open
 *   drops, never after an auth failure, `close()` or `system.disconnect`;
 * - each connection is checked with a `system.info` handshake before it counts as open, so a
 *   wrong token surfaces as a `FlynnError` (-4/-5) from `connect()` and from pending calls;
 * - event `seq` numbers are checked per connection (they restart at 1) and a jump is reported.
 */

import {
  createMethodGroups,
  METHOD_EVENTS,
  type AgentSendParams,
  type CallFn,
  type FlynnEvent,
  type MethodGroups,
  type MethodName,
  type ParamsOf,
  type ResultOf,
  type SystemInfoResult,
} from "./generated/protocol.js";
import { defaultTokenTransport, handshakeArgs, type TokenTransport } from "./auth.js";
import { backoffDelay, resolveReconnect, type ReconnectOptions, type ResolvedReconnect } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { ClientErrorCode, FlynnError, type FlynnErrorCode } from "./errors.js";
import { decodeUtf8, globalWebSocket, startTimer, stopTimer, type TimerHandle } from "./platform.js";
import { type CloseEventLike, type MessageEventLike, type WebSocketConstructor, type WebSocketLike } from "./socket.js";
import { RequestTable, type Pending, type RequestSink, type Resume } from "./requests.js";
import { StreamRun } from "./stream.js";
import type {
  CallArgs,
  CallOptions,
  CloseInfo,
  ConnectionState,
  SeqGap,
  StreamingMethod,
  StreamOptions,
} from "./types.js";
import { parseFrame, type ResponseFrame } from "./wire.js";

/** Options of {@link FlynnClient}. */
export interface FlynnClientOptions {
  /** Gateway URL, for example `ws://127.0.0.1:18800/`. */
  url: string;
  /** Bearer token (`server.token`), if the gateway requires one. */
  token?: string;
  /**
   * WebSocket constructor. Defaults to the host's global `WebSocket` (browsers, Node 22+); in
   * Node 20 pass the `ws` package's default export.
   */
  WebSocket?: WebSocketConstructor;
  /**
   * How the token is sent. Default: `subprotocol` with the host's own WebSocket (browsers cannot
   * set headers), `header` with an injected constructor such as `ws`.
   */
  tokenTransport?: TokenTransport;
  /** Default per-request timeout in ms (default 30 000; 0 disables). See {@link CallOptions.timeoutMs}. */
  requestTimeoutMs?: number;
  /** Reconnect policy after an open connection drops, or `false` to never reconnect. */
  reconnect?: ReconnectOptions | false;
  /** Called when events were lost (the `seqGap` event, as an option). */
  onSeqGap?: (gap: SeqGap) => void;
  /**
   * Give every `agent.send` an `idempotencyKey` (when it has none) so that it can rejoin its turn
   * after a reconnect and a retry never runs it twice. Default true.
   */
  idempotentSends?: boolean;
}

/** Events of the client (subscribe with `client.on(name, listener)`). */
export interface ClientEvents {
  /** Every state change. */
  state: ConnectionState;
  /** A connection passed its handshake; `reconnected` is true after a drop. */
  open: { info: SystemInfoResult; reconnected: boolean };
  /** An open connection closed. */
  close: CloseInfo;
  /** A reconnect attempt is scheduled. */
  reconnecting: { attempt: number; delayMs: number };
  /** Event frames were lost on the current connection. */
  seqGap: SeqGap;
  /** Every event frame, whichever request it belongs to. */
  event: FlynnEvent;
  /** Connection-level failures: auth errors, unreadable frames, a failed automatic `agent.cancel`. */
  error: FlynnError;
}

/** The typed method groups, with `agent.send` streaming. */
export type ClientMethodGroups = Omit<MethodGroups, "agent"> & {
  agent: Omit<MethodGroups["agent"], "send"> & {
    /** Sends a message and streams the run: await it for the result, iterate `.events` for the events. */
    send(params: AgentSendParams, options?: StreamOptions<"agent.send">): StreamRun<"agent.send">;
  };
};

/** One WebSocket and what belongs to it. */
interface Connection {
  readonly socket: WebSocketLike;
  /** Passed the `system.info` handshake. */
  ready: boolean;
  /** Next expected event `seq`. */
  expectedSeq: number;
  /** The connection-level error frame (-4/-5) received, if any. */
  fatal: FlynnError | undefined;
  /** Set after a successful `system.disconnect`: the close is intended; nothing more is written. */
  draining: boolean;
  /** Id of the `system.info` handshake request, once sent. */
  handshakeId: number | undefined;
  handshakeTimer: TimerHandle | undefined;
  /** Why the handshake failed, when it did (the socket is then closed). */
  handshakeError: string | undefined;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Events a method streams; none for a method this client does not know (the gateway answers -3, or a newer gateway handles it). */
function eventsOf(method: string): readonly string[] {
  return (METHOD_EVENTS as Readonly<Record<string, readonly string[] | undefined>>)[method] ?? [];
}

// The method groups are merged into the class's type; see the constructor.
export interface FlynnClient extends ClientMethodGroups {}

/** A client of one Flynn gateway. */
export class FlynnClient {
  readonly #url: string;
  readonly #token: string | undefined;
  readonly #ctor: WebSocketConstructor;
  readonly #transport: TokenTransport;
  readonly #timeoutMs: number;
  readonly #reconnect: ResolvedReconnect | undefined;
  readonly #emitter = new Emitter<ClientEvents>();
  readonly #requests = new RequestTable();
  #nextId = 1;
  #state: ConnectionState = "idle";
  #conn: Connection | undefined;
  #info: SystemInfoResult | undefined;
  #everOpen = false;
  #attempt = 0;
  #reconnectTimer: TimerHandle | undefined;
  #opening: Deferred<SystemInfoResult> | undefined;
  #closed: Deferred<void> | undefined;
  #idempotentSends = true;

  constructor(options: FlynnClientOptions) {
    if (typeof options.url !== "string" || !/^wss?:\/\//.test(options.url)) {
      throw new TypeError(`url must be a ws:// or wss:// URL, got ${JSON.stringify(options.url)}`);
    }
    const hostCtor = globalWebSocket();
    const ctor = options.WebSocket ?? hostCtor;
    if (ctor === undefined) {
      throw new TypeError(
        "this runtime has no global WebSocket: pass one as options.WebSocket (in Node: `import WebSocket from 'ws'`)",
      );
    }
    const timeoutMs = options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs >= 0)) throw new RangeError("requestTimeoutMs must be a number >= 0 (0 disables it)");
    this.#url = options.url;
    this.#token = options.token;
    this.#ctor = ctor;
    this.#transport = options.tokenTransport ?? defaultTokenTransport(ctor, hostCtor);
    this.#timeoutMs = timeoutMs;
    this.#reconnect = options.reconnect === false ? undefined : resolveReconnect(options.reconnect);
    if (options.onSeqGap !== undefined) this.on("seqGap", options.onSeqGap);
    this.#idempotentSends = options.idempotentSends ?? true;

    const callFn: CallFn = (method, params) => this.#call(method, params, {});
    const groups = createMethodGroups(callFn);
    const agent = {
      ...groups.agent,
      send: (params: AgentSendParams, streamOptions?: StreamOptions<"agent.send">) =>
        this.stream("agent.send", params, streamOptions),
    };
    const merged: ClientMethodGroups = { ...groups, agent };
    Object.assign(this, merged);
  }

  /** Current connection state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** `system.info` of the current connection (its `connectionId` and default `sessionId`), once open. */
  get info(): SystemInfoResult | undefined {
    return this.#state === "open" ? this.#info : undefined;
  }

  /** How the token is sent on this client. */
  get tokenTransport(): TokenTransport {
    return this.#transport;
  }

  /** Subscribes to a client event; returns the unsubscribe function. */
  on<K extends keyof ClientEvents>(name: K, listener: (payload: ClientEvents[K]) => void): () => void {
    return this.#emitter.on(name, listener);
  }

  /** Subscribes to the next occurrence of a client event. */
  once<K extends keyof ClientEvents>(name: K, listener: (payload: ClientEvents[K]) => void): () => void {
    return this.#emitter.once(name, listener);
  }

  /** Removes a listener added with {@link on}. */
  off<K extends keyof ClientEvents>(name: K, listener: (payload: ClientEvents[K]) => void): void {
    this.#emitter.off(name, listener);
  }

  /**
   * Opens the connection (calls do this on demand too) and resolves with its `system.info` once
   * the handshake passed. Rejects with the gateway's -4/-5 `FlynnError` when the token is missing
   * or wrong, or with `not_connected` when the gateway cannot be reached.
   */
  connect(): Promise<SystemInfoResult> {
    if (this.#state === "closed") {
      return Promise.reject(new FlynnError(ClientErrorCode.Closed, "the client was closed; create a new FlynnClient"));
    }
    if (this.#state === "open" && this.#info !== undefined) return Promise.resolve(this.#info);
    if (this.#opening === undefined) this.#opening = deferred();
    const opening = this.#opening;
    if (this.#state === "idle") this.#openSocket();
    return opening.promise;
  }

  /**
   * Calls any method by name. Params may be left out exactly when the method has no required
   * param. Streaming methods (`agent.send`) are run through {@link stream}, so aborting cancels them.
   */
  call<M extends MethodName>(method: M, ...args: CallArgs<M>): Promise<ResultOf<M>> {
    const [params, options] = args;
    return this.#call(method, params, options ?? {});
  }

  /**
   * Starts a streaming call. The returned run is awaitable (the final result) and iterable
   * (`for await (const ev of run.events)`); `options.onEvent` sees each event as it arrives.
   * Aborting `options.signal` (or `run.cancel()`) rejects it with code `aborted` and, for
   * `agent.send`, sends `agent.cancel` for the run's session.
   */
  stream<M extends StreamingMethod>(method: M, params: ParamsOf<M>, options: StreamOptions<M> = {}): StreamRun<M> {
    const id = this.#nextId++;
    const { run, sink } = StreamRun.create<M>(method, id, (reason) => this.#requests.abort(id, reason), options.onEvent);
    this.#enqueue(id, method, params, options, sink);
    return run;
  }

  /**
   * Closes the connection for good: every pending request rejects with code `closed` and no
   * reconnect happens. Resolves once the socket has closed.
   */
  close(code = 1000, reason = "client closed"): Promise<void> {
    if (this.#state === "closed") return this.#closed?.promise ?? Promise.resolve();
    const closed = deferred<void>();
    this.#closed = closed;
    stopTimer(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const error = new FlynnError(ClientErrorCode.Closed, "the client was closed before this request completed");
    this.#requests.rejectAll(() => error);
    this.#opening?.reject(error);
    this.#opening = undefined;
    const conn = this.#conn;
    this.#setState("closed");
    if (conn === undefined) {
      closed.resolve();
    } else {
      stopTimer(conn.handshakeTimer);
      try {
        conn.socket.close(code, reason);
      } catch {
        this.#conn = undefined;
        closed.resolve();
      }
    }
    return closed.promise;
  }

  // ---- requests ----

  #call<M extends MethodName>(method: M, params: unknown, options: CallOptions): Promise<ResultOf<M>> {
    if (eventsOf(method).length > 0) {
      return this.stream(method as MethodName as StreamingMethod, params as never, options).result as Promise<ResultOf<M>>;
    }
    return new Promise<ResultOf<M>>((resolve, reject) => {
      this.#enqueue(this.#nextId++, method, params, options, { event: () => undefined, resolve, reject });
    });
  }

  /** Registers a request; writes it now when a connection is open, else when the next one opens. */
  #enqueue(id: number, method: MethodName, params: unknown, options: CallOptions, sink: RequestSink): void {
    if (this.#state === "closed") {
      sink.reject(new FlynnError(ClientErrorCode.Closed, `${method}: the client was closed`, { method, requestId: id }));
      return;
    }
    let resume: Resume | undefined;
    if (method === "agent.send") {
      const send = { ...(params as Record<string, unknown>) };
      if (send["idempotencyKey"] === undefined && this.#idempotentSends) send["idempotencyKey"] = newKey();
      params = send;
      if (typeof send["idempotencyKey"] === "string") {
        const sessionId = (send["sessionId"] ?? send["session"]) as string | undefined;
        resume = { sessionId, runId: undefined, lastSeq: 0, sendParams: send };
      }
    } else if (method === "agent.attach") {
      const attach = params as { sessionId: string; runId?: string; afterSeq?: number };
      resume = { sessionId: attach.sessionId, runId: attach.runId, lastSeq: attach.afterSeq ?? 0, sendParams: undefined };
    }
    const pending = this.#requests.add({
      id,
      method,
      params,
      resume,
      timeoutMs: options.timeoutMs ?? this.#timeoutMs,
      signal: options.signal,
      streaming: eventsOf(method).length > 0,
      sink,
      cancelRemote: method === "agent.send" ? () => this.#cancelAgentRun(params as AgentSendParams) : undefined,
    });
    if (pending === undefined) return;
    if (this.#state === "open") this.#write(pending);
    else if (this.#state === "idle") this.connect().catch(() => undefined);
  }

  /** Writes a request on the open connection, once. */
  #write(pending: Pending): void {
    const conn = this.#conn;
    if (conn === undefined || !conn.ready || conn.draining || pending.sent) return;
    // A send to the connection's default session rejoins that session, not the next connection's.
    if (pending.resume !== undefined && pending.resume.sessionId === undefined) pending.resume.sessionId = this.#info?.sessionId;
    try {
      conn.socket.send(pending.frame);
      pending.sent = true;
    } catch (error) {
      this.#requests.reject(
        pending.id,
        new FlynnError(ClientErrorCode.ConnectionLost, `${pending.method} could not be written to the socket: ${String(error)}`, {
          method: pending.method,
          requestId: pending.id,
          cause: error,
        }),
      );
    }
  }

  /** Cancels the run of an aborted or timed-out `agent.send` on the gateway (its session, or the connection's default). */
  #cancelAgentRun(params: AgentSendParams): void {
    const sessionId = params.sessionId ?? params.session;
    this.#call("agent.cancel", sessionId === undefined ? {} : { sessionId }, {}).catch((error: unknown) => {
      if (error instanceof FlynnError) this.#emitter.emit("error", error);
    });
  }

  // ---- connection ----

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#emitter.emit("state", state);
  }

  #openSocket(): void {
    if (this.#state !== "reconnecting") this.#setState("connecting");
    const { protocols, options } = handshakeArgs(this.#token, this.#transport);
    let socket: WebSocketLike;
    try {
      socket = options === undefined ? new this.#ctor(this.#url, protocols) : new this.#ctor(this.#url, protocols, options);
    } catch (error) {
      this.#attemptFailed(`could not open a WebSocket to ${this.#url}: ${String(error)}`);
      return;
    }
    const conn: Connection = {
      socket,
      ready: false,
      expectedSeq: 1,
      fatal: undefined,
      draining: false,
      handshakeId: undefined,
      handshakeTimer: undefined,
      handshakeError: undefined,
    };
    this.#conn = conn;
    socket.onopen = () => this.#onOpen(conn);
    socket.onmessage = (event: MessageEventLike) => this.#onMessage(conn, event.data);
    socket.onclose = (event: CloseEventLike) => this.#onClose(conn, event.code, event.reason);
    socket.onerror = () => undefined; // a close event always follows
  }

  /** Sends the `system.info` handshake on a fresh socket. */
  #onOpen(conn: Connection): void {
    if (this.#conn !== conn || this.#state === "closed") return;
    const id = this.#nextId++;
    conn.handshakeId = id;
    const timeout = this.#timeoutMs > 0 ? this.#timeoutMs : DEFAULT_TIMEOUT_MS;
    conn.handshakeTimer = startTimer(timeout, () =>
      this.#handshakeFailed(conn, `the system.info handshake got no reply within ${timeout} ms`),
    );
    try {
      conn.socket.send(JSON.stringify({ id, method: "system.info" }));
    } catch (error) {
      this.#handshakeFailed(conn, `the system.info handshake could not be sent: ${String(error)}`);
    }
  }

  /** Closes a socket whose handshake failed; its close event then counts as a failed attempt. */
  #handshakeFailed(conn: Connection, why: string): void {
    stopTimer(conn.handshakeTimer);
    conn.handshakeId = undefined;
    conn.handshakeError = why;
    try {
      conn.socket.close(1000, "handshake failed");
    } catch {
      // the close event handles the rest
    }
  }

  #onMessage(conn: Connection, raw: unknown): void {
    if (this.#conn !== conn) return;
    let text: string;
    if (typeof raw === "string") text = raw;
    else if (raw instanceof ArrayBuffer || raw instanceof Uint8Array) text = decodeUtf8(raw);
    else {
      this.#emitter.emit("error", new FlynnError(ClientErrorCode.BadFrame, "the gateway sent a frame that is neither text nor binary"));
      return;
    }
    const frame = parseFrame(text);
    switch (frame.kind) {
      case "bad":
        this.#emitter.emit("error", new FlynnError(ClientErrorCode.BadFrame, frame.reason, { data: text.slice(0, 200) }));
        return;
      case "event":
        this.#onEvent(conn, frame.event);
        return;
      case "response":
        this.#onResponse(conn, frame.response);
        return;
    }
  }

  #onEvent(conn: Connection, event: FlynnEvent): void {
    if (typeof event.seq === "number") {
      if (event.seq !== conn.expectedSeq) {
        this.#emitter.emit("seqGap", { expected: conn.expectedSeq, got: event.seq });
      }
      conn.expectedSeq = event.seq + 1;
    }
    this.#emitter.emit("event", event);
    if (typeof event.id === "number") this.#requests.event(event.id, event);
  }

  #onResponse(conn: Connection, response: ResponseFrame): void {
    if ("error" in response && response.id === null) {
      // A connection-level error (-4/-5): the gateway closes right after it.
      const error = new FlynnError(response.error.code as FlynnErrorCode, response.error.message, { data: response.error.data });
      conn.fatal = error;
      this.#emitter.emit("error", error);
      return;
    }
    if (conn.handshakeId !== undefined && response.id === conn.handshakeId) {
      conn.handshakeId = undefined;
      if ("error" in response) {
        this.#handshakeFailed(conn, `the system.info handshake failed: ${response.error.message}`);
      } else {
        this.#onReady(conn, response.result as SystemInfoResult);
      }
      return;
    }
    const pending = this.#requests.sent(response.id);
    if (pending === undefined) return; // late reply of a request that timed out or was aborted
    if ("error" in response) {
      const { code, message, data } = response.error;
      this.#requests.reject(pending.id, new FlynnError(code as FlynnErrorCode, message, { data, method: pending.method, requestId: pending.id }));
    } else {
      if (pending.method === "system.disconnect") conn.draining = true;
      this.#requests.resolve(pending.id, response.result);
    }
  }

  /** The handshake passed: the connection is open; send what waited for it. */
  #onReady(conn: Connection, info: SystemInfoResult): void {
    stopTimer(conn.handshakeTimer);
    conn.ready = true;
    const reconnected = this.#everOpen;
    this.#everOpen = true;
    this.#attempt = 0;
    this.#info = info;
    this.#setState("open");
    this.#emitter.emit("open", { info, reconnected });
    this.#opening?.resolve(info);
    this.#opening = undefined;
    for (const pending of this.#requests.unsent()) this.#write(pending);
  }

  #onClose(conn: Connection, code: number, reason: string): void {
    if (this.#conn !== conn) return;
    this.#conn = undefined;
    stopTimer(conn.handshakeTimer);

    if (this.#state === "closed") {
      this.#emitter.emit("close", { code, reason, willReconnect: false });
      this.#closed?.resolve();
      return;
    }

    // Agent turns rejoin on the next connection; other requests already written are never
    // replayed: they fail now, and the app decides.
    if (conn.fatal === undefined && conn.ready && this.#reconnect !== undefined && !conn.draining) {
      for (const pending of this.#requests.resumable()) {
        pending.frame = rejoinFrame(pending.id, pending.resume as Resume);
        pending.sent = false;
      }
    }
    this.#requests.rejectAll(
      (pending) =>
        conn.fatal ??
        new FlynnError(
          ClientErrorCode.ConnectionLost,
          `${pending.method} (id ${pending.id}) was sent but the connection closed (code ${code}${reason ? `: ${reason}` : ""}) before its reply; it was not retried`,
          { method: pending.method, requestId: pending.id },
        ),
      (pending) => pending.sent,
    );

    if (conn.fatal !== undefined) {
      // Auth failures do not heal by retrying: stop, and fail what waited.
      const fatal = conn.fatal;
      this.#requests.rejectAll(() => fatal);
      this.#opening?.reject(fatal);
      this.#opening = undefined;
      this.#attempt = 0;
      this.#setState("idle");
      if (conn.ready) this.#emitter.emit("close", { code, reason, willReconnect: false, error: fatal });
      return;
    }

    if (conn.ready) {
      const willReconnect = this.#reconnect !== undefined && !conn.draining;
      this.#emitter.emit("close", { code, reason, willReconnect });
      if (willReconnect) {
        this.#setState("reconnecting");
        this.#scheduleReconnect();
      } else if (conn.draining && this.#requests.unsent().length > 0) {
        // Calls made after system.disconnect: they were never written, so open a new connection for them.
        this.#setState("idle");
        this.connect().catch(() => undefined);
      } else {
        this.#giveUp(`the connection closed (code ${code}${reason ? `: ${reason}` : ""})`);
      }
      return;
    }

    const why = conn.handshakeError ?? `the WebSocket to ${this.#url} closed before it opened (code ${code}${reason ? `: ${reason}` : ""}); is the gateway running there and does it allow this Origin?`;
    this.#attemptFailed(why);
  }

  /** A connection attempt failed before the handshake passed. */
  #attemptFailed(why: string): void {
    this.#conn = undefined;
    if (this.#state === "reconnecting" && this.#reconnect !== undefined) {
      if (this.#attempt < this.#reconnect.maxAttempts) {
        this.#scheduleReconnect();
        return;
      }
      this.#giveUp(`reconnecting gave up after ${this.#attempt} attempts; last: ${why}`);
      return;
    }
    this.#giveUp(why);
  }

  /** No connection now and none coming: fail what waited and return to `idle`. */
  #giveUp(why: string): void {
    const error = new FlynnError(ClientErrorCode.NotConnected, why);
    this.#requests.rejectAll(
      (pending) => new FlynnError(ClientErrorCode.NotConnected, `${pending.method} was not sent: ${why}`, { method: pending.method, requestId: pending.id }),
    );
    this.#opening?.reject(error);
    this.#opening = undefined;
    this.#attempt = 0;
    this.#setState("idle");
  }

  #scheduleReconnect(): void {
    const policy = this.#reconnect;
    if (policy === undefined) return;
    this.#attempt += 1;
    const delayMs = backoffDelay(this.#attempt, policy);
    this.#emitter.emit("reconnecting", { attempt: this.#attempt, delayMs });
    this.#reconnectTimer = startTimer(delayMs, () => {
      this.#reconnectTimer = undefined;
      if (this.#state === "reconnecting") this.#openSocket();
    });
  }
}

/** A fresh idempotency key: random, unique per send. */
function newKey(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID !== undefined) return c.randomUUID();
  return `k-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

/** The frame that rejoins a turn on a new connection (decision resumable-runs). */
function rejoinFrame(id: number, resume: Resume): string {
  if (resume.runId === undefined && resume.sendParams !== undefined) {
    const params = { ...resume.sendParams };
    if (resume.sessionId !== undefined) params["sessionId"] = resume.sessionId;
    delete params["session"];
    return JSON.stringify({ id, method: "agent.send", params });
  }
  const params: Record<string, unknown> = { sessionId: resume.sessionId, afterSeq: resume.lastSeq };
  if (resume.runId !== undefined) params["runId"] = resume.runId;
  return JSON.stringify({ id, method: "agent.attach", params });
}
