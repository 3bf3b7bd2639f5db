/**
 * The signaling client: one WebSocket to the Salon server at a time, the hello/welcome
 * handshake, keepalive (answering the server's `ping`, and noticing a server gone silent),
 * typed events per server message type, and reconnect with resume when the socket is lost.
 * Framework-free; the UI subscribes through hooks.
 *
 *   idle ──connect──▶ connecting ──welcome──▶ open ──socket lost──▶ reconnecting
 *                         │                    ▲                        │
 *                      refused                 └──welcome (resumed or ──┘
 *                         ▼                        renewed)             │
 *                       closed ◀── close(), 4005, 4006, refused, gave up ─┘
 *
 * A member is a place that a socket occupies (docs/PROTOCOL.md, "Places outlive sockets"):
 * after a loss this side says `hello {resume: <latest token>}` on a new socket and takes its
 * place back ("resumed": same id, peer connections untouched). When the server no longer
 * holds the place it answers `resume_failed`; this side then says a plain `hello` under the
 * same name on the same socket and starts again as a new member ("renewed").
 */
import {
  PROTOCOL_VERSIONS,
  decodeServer,
  encodeClient,
  type ClientMessage,
  type ErrorMessage,
  type IceServer,
  type ServerOf,
  type ServerType,
  type Welcome,
} from "../protocol";
import { Emitter } from "./emitter";
import { drainDelayMs, retryDelayMs } from "./retry";

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

export type SignalingState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** Why the connection ended for good. */
export type CloseCause =
  /** This side closed it. */
  | "left"
  /** The server could not be reached again before the client gave up. */
  | "lost"
  /** Another tab or window took this place over (close code 4005); never reconnect. */
  | "replaced"
  /**
   * The account session this connection was signed in with ended: signed out here or in
   * another tab, or a password change elsewhere (close code 4006). Never reconnect: a new
   * socket would be a guest's, or refused where the server requires signing in.
   */
  | "signed_out"
  /** The server will not take this connection back (protocol version, name, sign-in). */
  | "refused";

/** Why the connection ended, for the UI to explain. */
export interface CloseInfo {
  code: number;
  reason: string;
  /** true when this side asked to close; false when the connection was lost. */
  expected: boolean;
  cause: CloseCause;
}

/** How the socket that held the place ended, when a reconnect starts. */
export interface LossInfo {
  code: number;
  reason: string;
}

/** Where the browser says the network came back (`window`); tests pass an EventTarget. */
export interface NetworkEvents {
  addEventListener(type: "online", listener: () => void): void;
  removeEventListener(type: "online", listener: () => void): void;
}

export interface SignalingOptions {
  /** Random source in [0, 1) for retry jitter. */
  random?: () => number;
  /** Source of the `online` event; `window` by default, null for none. */
  network?: NetworkEvents | null;
  /** Stop retrying after this long without getting the place back. */
  giveUpAfterMs?: number;
  /** Abandon one attempt that has no welcome after this long. */
  attemptTimeoutMs?: number;
  /** Messages `send()` keeps while reconnecting; the oldest is dropped past this. */
  queueLimit?: number;
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

interface LifecycleEvents {
  state: SignalingState;
  reconnecting: LossInfo;
  resumed: Welcome;
  renewed: Welcome;
  close: CloseInfo;
}

/** What the current socket said in its hello. */
type Greeting = "first" | "resume" | "fresh";

/** Extra time past the server's dead-peer timeout before this side gives up. */
const SILENCE_GRACE_MS = 5_000;
/** How long a probe (see `probe`) waits for any word from the server. */
export const PROBE_TIMEOUT_MS = 4_000;
export const GIVE_UP_AFTER_MS = 5 * 60_000;
export const ATTEMPT_TIMEOUT_MS = 10_000;
export const QUEUE_LIMIT = 200;
const OPEN = 1;
/** A close code of our own for an abandoned socket: not 1000/1001, so the place is kept. */
const RETRYING = 4000;
/** Handshake errors a retry cannot change; anything else (server_full, name_taken while the
 *  old place times out, rate_limited) may pass, so the schedule goes on. */
const REFUSED = new Set<string>(["unsupported_version", "invalid_name", "sign_in_required", "bad_message"]);
/**
 * Close codes after which this side does not reconnect (docs/PROTOCOL.md §6.2): 4005 and 4006
 * MUST NOT; after 4001 and 4003 (rate abuse, §2.4) reconnecting at once would only be
 * refused or abuse again, so the user decides (a reload).
 */
const FINAL_CLOSES: Record<number, CloseCause> = {
  4005: "replaced",
  4006: "signed_out",
  4001: "refused",
  4003: "refused",
};

/** A User Timing mark (visible in DevTools and to the benchmark); free when unobserved. */
function mark(name: string): void {
  globalThis.performance?.mark?.(name);
}

export function signalingUrl(location: { protocol: string; host: string }): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

function browserNetwork(): NetworkEvents | null {
  return typeof window === "undefined" ? null : window;
}

export class SignalingClient {
  state: SignalingState = "idle";
  /** The latest welcome: the first one, then the one of each resume or renewal. */
  welcome: Welcome | null = null;
  /**
   * The newest ICE servers the server handed out: those of the latest welcome, or of the
   * latest `ice_servers` answer to `ice_refresh` after it (docs/PROTOCOL.md §2.2).
   */
  iceServers: readonly IceServer[] = [];
  private socket: SocketLike | null = null;
  private greeting: Greeting = "first";
  private readonly messages = new Emitter<MessageEvents>();
  private readonly lifecycle = new Emitter<LifecycleEvents>();
  private heardAt = 0;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private name = "";
  /** Callable by this name (direct calls); said in every hello, resumes included. */
  private reachable = false;
  private token: string | null = null;
  private queue: ClientMessage[] = [];
  private droppedFromQueue = 0;
  private attempt = 0;
  private lostAt = 0;
  private drainRetryMs: number | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private attemptTimer: ReturnType<typeof setTimeout> | null = null;
  private probeTimer: ReturnType<typeof setTimeout> | null = null;
  private first: { resolve: (w: Welcome) => void; reject: (e: Error) => void } | null = null;
  private readonly random: () => number;
  private readonly network: NetworkEvents | null;
  private readonly giveUpAfterMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly queueLimit: number;
  private readonly onOnline = () => this.retryNow();

  constructor(
    private readonly url: string,
    private readonly socketFactory: SocketFactory = (u) => new WebSocket(u) as SocketLike,
    options: SignalingOptions = {},
  ) {
    this.random = options.random ?? Math.random;
    this.network = options.network === undefined ? browserNetwork() : options.network;
    this.giveUpAfterMs = options.giveUpAfterMs ?? GIVE_UP_AFTER_MS;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS;
    this.queueLimit = options.queueLimit ?? QUEUE_LIMIT;
  }

  /** The token a reconnect presents: the latest one the server gave (null once refused). */
  get resumeToken(): string | null {
    return this.token;
  }

  /**
   * Open the socket and say hello; resolves with the welcome, rejects with SignalingError.
   * `reachable`: be callable by this name (the call page); a room page is not
   * (docs/PROTOCOL.md, hello: a reachable name is unique, a room name need not be).
   */
  connect(name: string, options: { reachable?: boolean } = {}): Promise<Welcome> {
    if (this.state !== "idle") return Promise.reject(new Error("connect() is called once"));
    this.name = name;
    this.reachable = options.reachable === true;
    this.setState("connecting");
    return new Promise<Welcome>((resolve, reject) => {
      this.first = { resolve, reject };
      if (!this.openSocket("first")) {
        this.failFirst(new SignalingError("unreachable", "Could not open a connection to the server."));
      }
    });
  }

  /** Subscribe to one server message type. Returns the unsubscribe function. */
  on<T extends ServerType>(type: T, handler: (message: ServerOf<T>) => void): () => void {
    return this.messages.on(type, handler);
  }

  /** The connection ended for good (no more reconnects). */
  onClose(handler: (info: CloseInfo) => void): () => void {
    return this.lifecycle.on("close", handler);
  }

  /** The socket was lost and reconnecting started; messages sent now are queued. */
  onReconnecting(handler: (info: LossInfo) => void): () => void {
    return this.lifecycle.on("reconnecting", handler);
  }

  /** The place was taken back (same id); the queue has been sent. */
  onResumed(handler: (welcome: Welcome) => void): () => void {
    return this.lifecycle.on("resumed", handler);
  }

  /** The place was lost and a new one made under the same name (new id, no room). */
  onRenewed(handler: (welcome: Welcome) => void): () => void {
    return this.lifecycle.on("renewed", handler);
  }

  onStateChange(handler: (state: SignalingState) => void): () => void {
    return this.lifecycle.on("state", handler);
  }

  /**
   * Send a message. While reconnecting it is queued (bounded) and sent once the place is
   * resumed, or dropped if it is renewed. False when there is no connection to send on.
   */
  send(message: ClientMessage): boolean {
    if (this.state === "open" && this.raw(message)) return true;
    // An open state with a socket that is no longer OPEN: its close event is on the way.
    if (this.state !== "open" && this.state !== "reconnecting") return false;
    if (this.queue.length >= this.queueLimit) {
      const dropped = this.queue.shift();
      if (this.droppedFromQueue++ === 0)
        console.warn(
          `salon signaling: ${this.queueLimit} messages queued; dropping the oldest (${dropped?.type})`,
        );
    }
    this.queue.push(message);
    return true;
  }

  /** Close for good, with 1000: the server ends the place at once (the person left). */
  close(): void {
    if (this.state === "closed" || this.state === "idle") return;
    this.detach(1000, "bye");
    if (this.state === "connecting") {
      this.failFirst(new SignalingError("unreachable", "The connection was closed before the welcome."));
      return;
    }
    this.finish({ code: 1000, reason: "bye", expected: true, cause: "left" });
  }

  private openSocket(greeting: Greeting): boolean {
    let socket: SocketLike;
    try {
      socket = this.socketFactory(this.url);
    } catch {
      return false;
    }
    this.socket = socket;
    this.greeting = greeting;
    // Events from a socket this client has let go of are ignored.
    socket.onopen = () => {
      if (this.socket !== socket) return;
      mark("salon:ws-open");
      this.hello();
    };
    socket.onmessage = (event) => {
      if (this.socket === socket) this.onFrame(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) this.onSocketClosed(event.code, event.reason);
    };
    socket.onerror = () => {
      // A close event always follows; it carries the outcome.
    };
    return true;
  }

  /**
   * Check the path to the server now: send a `ping` (docs/PROTOCOL.md §2.3) and, when nothing
   * at all is heard within `timeoutMs`, drop the socket and resume on a new one. For when the
   * network may have changed under an open socket (the media's ICE went `disconnected`): a
   * socket bound to an address the machine lost never closes by itself, and waiting for the
   * dead-peer timeout (`dead_after_seconds`, 45 s by default) would hold back the ICE
   * restart's offer just as long. No-op unless open; one probe at a time.
   */
  probe(timeoutMs: number = PROBE_TIMEOUT_MS): void {
    if (this.state !== "open" || this.probeTimer !== null) return;
    const askedAt = Date.now();
    if (!this.raw({ type: "ping" })) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      if (this.state !== "open" || this.heardAt >= askedAt) return;
      this.detach(RETRYING, "no answer to a probe");
      this.beginReconnect({ code: 4004, reason: "no answer to a probe" });
    }, timeoutMs);
  }

  private hello(): void {
    const resume = this.greeting === "resume" ? this.token : null;
    this.raw({
      type: "hello",
      versions: [...PROTOCOL_VERSIONS],
      name: this.name,
      ...(this.reachable ? { reachable: true } : {}),
      ...(resume !== null ? { resume } : {}),
    });
  }

  private onFrame(data: unknown): void {
    if (typeof data !== "string") return;
    const message = decodeServer(data);
    if (message === null) return;
    this.heardAt = Date.now();
    if (this.state !== "open") {
      if (message.type === "welcome") this.onWelcome(message);
      else if (message.type === "error") this.onHandshakeError(message);
      return;
    }
    switch (message.type) {
      case "ping":
        this.raw({ type: "pong" });
        break;
      case "joined":
        mark("salon:joined");
        break;
      case "resume_token":
        this.token = message.token; // only the latest is valid for long
        break;
      case "server_draining":
        this.drainRetryMs = message.retry_after_ms;
        break;
      case "ice_servers":
        this.iceServers = message.ice_servers;
        break;
    }
    this.messages.emit(message.type, message as never);
  }

  private onWelcome(welcome: Welcome): void {
    this.clearTimers();
    const previous = this.welcome;
    const greeting = this.greeting;
    this.welcome = welcome;
    this.iceServers = welcome.ice_servers;
    this.name = welcome.name;
    this.token = welcome.resume_token;
    this.startWatchdog(welcome.limits.dead_after_seconds * 1000 + SILENCE_GRACE_MS);
    if (greeting === "first") {
      mark("salon:welcome");
      this.setState("open");
      this.first?.resolve(welcome);
      this.first = null;
      return;
    }
    this.network?.removeEventListener("online", this.onOnline);
    this.attempt = 0;
    this.drainRetryMs = null;
    const queued = this.queue;
    this.queue = [];
    if (this.droppedFromQueue > 0)
      console.warn(
        `salon signaling: ${this.droppedFromQueue} queued messages were dropped while reconnecting`,
      );
    this.droppedFromQueue = 0;
    const resumed =
      greeting === "resume" && (welcome.resumed ?? null) !== null && welcome.id === previous?.id;
    this.setState("open");
    if (resumed) {
      mark("salon:resumed");
      for (const message of queued) this.send(message);
      this.lifecycle.emit("resumed", welcome);
    } else {
      // A new member: what was queued was addressed from the old place and its room.
      mark("salon:renewed");
      this.lifecycle.emit("renewed", welcome);
    }
  }

  private onHandshakeError(error: ErrorMessage): void {
    if (this.greeting === "first") {
      this.detach(1000, "refused");
      this.failFirst(new SignalingError(error.code, error.message));
      return;
    }
    if (error.code === "resume_failed" && this.greeting === "resume") {
      // The place is gone (window over, left, or a token the server no longer accepts). The
      // connection awaits a hello still: start a new place under the same name.
      this.token = null;
      this.greeting = "fresh";
      this.hello();
      return;
    }
    if (REFUSED.has(error.code)) {
      this.detach(1000, "refused");
      this.finish({ code: 1000, reason: error.message, expected: false, cause: "refused" });
      return;
    }
    this.detach(RETRYING, "retrying");
    this.scheduleRetry();
  }

  private onSocketClosed(code: number, reason: string): void {
    this.socket = null;
    if (this.state === "connecting") {
      this.failFirst(new SignalingError("unreachable", "Could not reach the Salon server."));
      return;
    }
    const final = FINAL_CLOSES[code];
    if (final !== undefined) {
      this.finish({ code, reason, expected: false, cause: final });
    } else if (this.state === "open") {
      this.beginReconnect({ code, reason });
    } else if (this.state === "reconnecting") {
      if (this.attemptTimer !== null) clearTimeout(this.attemptTimer);
      this.attemptTimer = null;
      this.scheduleRetry();
    }
  }

  private beginReconnect(loss: LossInfo): void {
    this.stopWatchdog();
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    this.lostAt = Date.now();
    this.attempt = 0;
    this.setState("reconnecting");
    this.network?.addEventListener("online", this.onOnline);
    this.lifecycle.emit("reconnecting", loss);
    const drain = this.drainRetryMs;
    this.drainRetryMs = null;
    // A draining server said when to come back: its successor needs that long to listen.
    if (drain !== null) this.retryIn(drainDelayMs(drain, this.random));
    else this.tryNow();
  }

  /** One attempt failed: try again on the schedule, or give up past the limit. */
  private scheduleRetry(): void {
    if (this.state !== "reconnecting") return;
    if (Date.now() - this.lostAt >= this.giveUpAfterMs) {
      this.finish({ code: 1006, reason: "could not reach the server", expected: false, cause: "lost" });
      return;
    }
    this.attempt += 1;
    this.retryIn(retryDelayMs(this.attempt, this.random));
  }

  private retryIn(ms: number): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.tryNow();
    }, ms);
  }

  private tryNow(): void {
    if (this.state !== "reconnecting" || this.socket !== null) return;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (!this.openSocket(this.token !== null ? "resume" : "fresh")) {
      this.scheduleRetry();
      return;
    }
    this.attemptTimer = setTimeout(() => {
      // A socket stuck connecting (packets dropped, not refused) would otherwise hold the
      // schedule until the browser's own timeout, which can be minutes.
      this.attemptTimer = null;
      this.detach(RETRYING, "handshake timed out");
      this.scheduleRetry();
    }, this.attemptTimeoutMs);
  }

  /** The browser says the network is back: try at once, and from the start of the schedule. */
  private retryNow(): void {
    if (this.state !== "reconnecting") return;
    if (this.socket !== null && this.socket.readyState === OPEN) return; // a handshake is under way
    this.detach(RETRYING, "network back");
    if (this.attemptTimer !== null) clearTimeout(this.attemptTimer);
    this.attemptTimer = null;
    this.attempt = 0;
    this.tryNow();
  }

  private failFirst(error: SignalingError): void {
    this.clearTimers();
    this.stopWatchdog();
    this.setState("closed");
    this.first?.reject(error);
    this.first = null;
  }

  private finish(info: CloseInfo): void {
    this.clearTimers();
    this.stopWatchdog();
    this.network?.removeEventListener("online", this.onOnline);
    this.queue = [];
    this.setState("closed");
    this.lifecycle.emit("close", info);
  }

  /** Let go of the current socket: no more events from it, and close it with `code`. */
  private detach(code: number, reason: string): void {
    const socket = this.socket;
    if (socket === null) return;
    this.socket = null;
    try {
      socket.close(code, reason);
    } catch {
      // Already closed, or a code the browser refuses: either way it is gone.
    }
  }

  private raw(message: ClientMessage): boolean {
    if (this.socket === null || this.socket.readyState !== OPEN) return false;
    this.socket.send(encodeClient(message));
    return true;
  }

  private setState(state: SignalingState): void {
    if (this.state === state) return;
    this.state = state;
    this.lifecycle.emit("state", state);
  }

  private clearTimers(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.attemptTimer !== null) clearTimeout(this.attemptTimer);
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.retryTimer = null;
    this.attemptTimer = null;
    this.probeTimer = null;
  }

  private startWatchdog(deadAfterMs: number): void {
    this.stopWatchdog();
    this.heardAt = Date.now();
    this.watchdog = setInterval(() => {
      if (this.state !== "open" || Date.now() - this.heardAt <= deadAfterMs) return;
      // The server pings after its own silence timeout; hearing nothing means the path is
      // gone (often without a close event, e.g. a laptop waking up): reconnect.
      this.detach(4004, "server silent");
      this.beginReconnect({ code: 4004, reason: "server silent" });
    }, 1000);
  }

  private stopWatchdog(): void {
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.watchdog = null;
  }
}
