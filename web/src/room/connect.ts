/** Open a signaling connection under a name: the first step of joining or calling. */
import type { LocalMedia } from "../rtc/media";
import { SignalingClient, SignalingError, signalingUrl } from "../signaling/client";
import { rememberHostKey } from "./hostKeys";
import { RoomSession, type JoinOptions } from "./session";

/** Say hello under `name`; `reachable` only on the call page (callable by that name). */
export async function connectAs(
  name: string,
  options: { reachable?: boolean } = {},
): Promise<SignalingClient> {
  const client = new SignalingClient(signalingUrl(window.location));
  await client.connect(name, options);
  return client;
}

/** `GET /api/v1/rooms/{id}`: what a person about to join may know of the room. */
export interface RoomInfo {
  id: string;
  exists: boolean;
  /** How many are in it; null when the room is locked or has a password (not told). */
  members: number | null;
  /** Whether it reached the room size; false also when not told (locked or password). */
  full: boolean;
  /** Joining needs the password (or a host's admission, with the lobby on). */
  protected: boolean;
  /** Nobody new may join or knock. */
  locked: boolean;
  /** Joining means asking a host ("Ask to join"). */
  lobby: boolean;
  /** This browser's signed-in account is a host of it by right: it goes past every guard. */
  host: boolean;
}

/** What the server requires of everyone (`GET /api/v1/health`). */
export interface ServerRules {
  /** Only signed-in people may connect (the WebSocket is refused with 401 otherwise). */
  requireSignIn: boolean;
}

/** The CSRF token: the `salon_csrf` cookie every page load sets, else `GET /api/v1/csrf`. */
export async function csrfToken(): Promise<string> {
  const match = /(?:^|;\s*)salon_csrf=([^;]+)/.exec(document.cookie);
  if (match?.[1]) return decodeURIComponent(match[1]);
  const response = await fetch("/api/v1/csrf");
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  return ((await response.json()) as { token: string }).token;
}

/** The server refused `POST /api/v1/rooms`: its HTTP status, and its `Retry-After` in s. */
export class RoomNotCreated extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterSeconds: number | null,
  ) {
    super(`the server answered ${status}`);
  }
}

/** What the home page says when a meeting could not be created. */
export function roomNotCreatedText(error: unknown): string {
  if (error instanceof RoomNotCreated && error.status === 429) {
    const wait =
      error.retryAfterSeconds === null ? "in a minute" : `in ${Math.ceil(error.retryAfterSeconds)} s`;
    return `Too many meetings were created from your network just now: try again ${wait}.`;
  }
  if (error instanceof RoomNotCreated) {
    return `The Salon server could not create a meeting (it answered ${error.status}). Try again in a moment.`;
  }
  return "Could not reach the Salon server to create a meeting. Check your connection and try again.";
}

/**
 * `POST /api/v1/rooms` with the CSRF token the server requires of state changes. The
 * `host_key` of the answer is kept in this browser, so joining the room makes its creator
 * a host (src/room/hostKeys.ts).
 */
export async function createRoom(): Promise<string> {
  const response = await fetch("/api/v1/rooms", {
    method: "POST",
    headers: { "X-CSRF-Token": await csrfToken() },
  });
  if (!response.ok) {
    const wait = Number(response.headers.get("Retry-After") ?? "");
    throw new RoomNotCreated(response.status, Number.isFinite(wait) && wait > 0 ? wait : null);
  }
  const body = (await response.json()) as { id: string; host_key?: string | null };
  if (typeof body.host_key === "string" && body.host_key !== "") rememberHostKey(body.id, body.host_key);
  return body.id;
}

/** `GET /api/v1/rooms/{id}`, or null when the server cannot be reached. */
export async function roomInfo(id: string): Promise<RoomInfo | null> {
  try {
    const response = await fetch(`/api/v1/rooms/${encodeURIComponent(id)}`);
    if (!response.ok) return null;
    return readRoomInfo(await response.json());
  } catch {
    return null;
  }
}

/** A room info body, with the fields an older server does not send set to "no". */
export function readRoomInfo(body: unknown): RoomInfo {
  const raw = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const flag = (key: string) => raw[key] === true;
  return {
    id: typeof raw.id === "string" ? raw.id : "",
    exists: flag("exists"),
    members: typeof raw.members === "number" ? raw.members : null,
    full: flag("full"),
    protected: flag("protected"),
    locked: flag("locked"),
    lobby: flag("lobby"),
    host: flag("host"),
  };
}

let rules: Promise<ServerRules> | null = null;

/**
 * `GET /api/v1/health`, asked once per page load: whether the server requires signing in.
 * A server that cannot be asked, or does not say, requires nothing (connecting will tell).
 */
export function serverRules(): Promise<ServerRules> {
  rules ??= fetch("/api/v1/health")
    .then(async (response) => {
      if (!response.ok) return { requireSignIn: false };
      const body = (await response.json()) as { require_sign_in?: unknown };
      return { requireSignIn: body.require_sign_in === true };
    })
    .catch(() => ({ requireSignIn: false }));
  return rules;
}

const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A room id from what someone pasted: a code, or a link ending in /r/<id>. */
export function parseRoomInput(input: string): string | null {
  const text = input.trim();
  const match = /\/r\/([^/?#\s]+)/.exec(text);
  const id = match ? decodeURIComponent(match[1] ?? "") : text;
  return ROOM_ID.test(id) ? id : null;
}

/**
 * Connect under `name` and join `roomId`; resolves once `joined` arrives, or once the
 * server says this side waits in the room's lobby (`lobby_waiting`). `greeted`: a connection
 * already greeted under `name` (the pre-join page's, see `EarlyGreeting`) to join on, instead
 * of opening one; it is closed, like one opened here, when the join fails.
 */
export async function joinRoom(
  name: string,
  roomId: string,
  media: LocalMedia,
  options: JoinOptions = {},
  greeted: SignalingClient | null = null,
): Promise<{ client: SignalingClient; session: RoomSession }> {
  const client = greeted ?? (await connectAs(name));
  const session = new RoomSession(client, media);
  const offs: (() => void)[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      offs.push(
        session.subscribe(() => {
          const { phase, problem } = session.snapshot;
          if (phase === "joined" || phase === "waiting") resolve();
          if (phase === "failed")
            reject(new SignalingError(problem?.code ?? "failed", problem?.message ?? "Could not join."));
        }),
        client.onClose(() =>
          reject(new SignalingError("unreachable", "The connection closed while joining.")),
        ),
      );
      session.join(roomId, options);
    });
  } catch (error) {
    session.dispose();
    client.close();
    throw error;
  } finally {
    for (const off of offs) off();
  }
  return { client, session };
}
