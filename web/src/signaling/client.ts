/**
 * The signaling client: one WebSocket to the Salon server, the hello/welcome handshake,
 * keepalive (answering the server's `ping`, and noticing a server gone silent), and typed
 * events per server message type. Framework-free; the UI subscribes through hooks.
 */
import {
  PROTOCOL_VERSIONS,
  decodeServer,
  encodeClient,
  type ClientMessage,
  type ServerOf,
  type ServerType,
  type Welcome,
} from "../protocol";
import { Emitter } from "./emitter";

/** The part of the browser's WebSocket this client uses; tests pass a fake. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type SocketFactory = (url: string) => SocketLike;

export type SignalingState = "idle" | "connecting" | "open" | "closed";

/** Why the connection ended, for the UI to explain. */
export interface CloseInfo {
  code: number;
  reason: string;
  /** true when this side asked to close; false when the connection was lost. */
  expected: boolean;
}

/** A failed handshake: `code` is the server's error code, or `unreachable`. */
export class SignalingError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "SignalingError";
  }
}

type MessageEvents = { [T in ServerType]: ServerOf<T> };

/** Extra time past the server's dead-peer timeout before this side gives up. */
const SILENCE_GRACE_MS = 5_000;
const OPEN = 1;

/** A User Timing mark (visible in DevTools and to the benchmark); free when unobserved. */
function mark(name: string): void {
  globalThis.performance?.mark?.(name);
}

export function signalingUrl(location: { protocol: string; host: string }): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

export class SignalingClient {
  state: SignalingState = "idle";
  welcome: Welcome | null = null;
  private socket: SocketLike | null = null;
  private readonly messages = new Emitter<MessageEvents>();
  private readonly lifecycle = new Emitter<{ close: CloseInfo }>();
  private closing = false;
  private heardAt = 0;
  private watchdog: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly url: string,
    private readonly socketFactory: SocketFactory = (u) => new WebSocket(u) as SocketLike,
  ) {}

  /** Open the socket and say hello; resolves with the welcome, rejects with SignalingError. */
  connect(name: string): Promise<Welcome> {
    if (this.state !== "idle") return Promise.reject(new Error("connect() is called once"));
    this.state = "connecting";
    return new Promise<Welcome>((resolve, reject) => {
      let socket: SocketLike;
      try {
        socket = this.socketFactory(this.url);
      } catch {
        this.state = "closed";
        reject(new SignalingError("unreachable", "Could not open a connection to the server."));
        return;
      }
      this.socket = socket;
      socket.onopen = () => {
        mark("salon:ws-open");
        this.raw({ type: "hello", versions: [...PROTOCOL_VERSIONS], name });
      };
      socket.onmessage = (event) => {
        if (typeof event.data !== "string") return;
        const message = decodeServer(event.data);
        if (message === null) return;
        this.heardAt = Date.now();
        if (this.state === "connecting") {
          if (message.type === "welcome") {
            this.state = "open";
            this.welcome = message;
            mark("salon:welcome");
            this.startWatchdog(message.limits.dead_after_seconds * 1000 + SILENCE_GRACE_MS);
            resolve(message);
          } else if (message.type === "error") {
            this.closing = true;
            socket.close(1000);
            reject(new SignalingError(message.code, message.message));
          }
          return;
        }
        if (message.type === "ping") this.raw({ type: "pong" });
        if (message.type === "joined") mark("salon:joined");
        this.messages.emit(message.type, message as never);
      };
      socket.onclose = (event) => {
        const wasConnecting = this.state === "connecting";
        this.state = "closed";
        this.stopWatchdog();
        if (wasConnecting) {
          reject(new SignalingError("unreachable", "Could not reach the Salon server."));
          return;
        }
        this.lifecycle.emit("close", {
          code: event.code,
          reason: event.reason,
          expected: this.closing,
        });
      };
      socket.onerror = () => {
        // A close event always follows; it carries the outcome.
      };
    });
  }

  /** Subscribe to one server message type. Returns the unsubscribe function. */
  on<T extends ServerType>(type: T, handler: (message: ServerOf<T>) => void): () => void {
    return this.messages.on(type, handler);
  }

  onClose(handler: (info: CloseInfo) => void): () => void {
    return this.lifecycle.on("close", handler);
  }

  /** Send a message; false when the connection is not open (the caller decides what to do). */
  send(message: ClientMessage): boolean {
    if (this.state !== "open") return false;
    return this.raw(message);
  }

  close(): void {
    if (this.state === "closed" || this.socket === null) return;
    this.closing = true;
    this.stopWatchdog();
    this.socket.close(1000, "bye");
  }

  private raw(message: ClientMessage): boolean {
    if (this.socket === null || this.socket.readyState !== OPEN) return false;
    this.socket.send(encodeClient(message));
    return true;
  }

  private startWatchdog(deadAfterMs: number): void {
    this.watchdog = setInterval(() => {
      if (Date.now() - this.heardAt > deadAfterMs && this.socket !== null) {
        // The server pings after its own silence timeout; hearing nothing means it is gone.
        this.stopWatchdog();
        this.socket.close(4004, "server silent");
        this.state = "closed";
        this.lifecycle.emit("close", { code: 4004, reason: "server silent", expected: false });
        this.socket.onclose = null;
      }
    }, 1000);
  }

  private stopWatchdog(): void {
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.watchdog = null;
  }
}
