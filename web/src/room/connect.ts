/** Open a signaling connection under a name: the first step of joining or calling. */
import type { LocalMedia } from "../rtc/media";
import { SignalingClient, SignalingError, signalingUrl } from "../signaling/client";
import { RoomSession } from "./session";

export async function connectAs(name: string): Promise<SignalingClient> {
  const client = new SignalingClient(signalingUrl(window.location));
  await client.connect(name);
  return client;
}

export interface RoomInfo {
  id: string;
  exists: boolean;
  members: number;
  full: boolean;
}

/** The CSRF token: the `salon_csrf` cookie every page load sets, else `GET /api/v1/csrf`. */
export async function csrfToken(): Promise<string> {
  const match = /(?:^|;\s*)salon_csrf=([^;]+)/.exec(document.cookie);
  if (match?.[1]) return decodeURIComponent(match[1]);
  const response = await fetch("/api/v1/csrf");
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  return ((await response.json()) as { token: string }).token;
}

/** `POST /api/v1/rooms` with the CSRF token the server requires of state changes. */
export async function createRoom(): Promise<string> {
  const response = await fetch("/api/v1/rooms", {
    method: "POST",
    headers: { "X-CSRF-Token": await csrfToken() },
  });
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  const body = (await response.json()) as { id: string };
  return body.id;
}

/** `GET /api/v1/rooms/{id}`, or null when the server cannot be reached. */
export async function roomInfo(id: string): Promise<RoomInfo | null> {
  try {
    const response = await fetch(`/api/v1/rooms/${encodeURIComponent(id)}`);
    if (!response.ok) return null;
    return (await response.json()) as RoomInfo;
  } catch {
    return null;
  }
}

const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A room id from what someone pasted: a code, or a link ending in /r/<id>. */
export function parseRoomInput(input: string): string | null {
  const text = input.trim();
  const match = /\/r\/([^/?#\s]+)/.exec(text);
  const id = match ? decodeURIComponent(match[1] ?? "") : text;
  return ROOM_ID.test(id) ? id : null;
}

/** Connect under `name` and join `roomId`; resolves once `joined` arrives. */
export async function joinRoom(
  name: string,
  roomId: string,
  media: LocalMedia,
): Promise<{ client: SignalingClient; session: RoomSession }> {
  const client = await connectAs(name);
  const session = new RoomSession(client, media);
  const offs: (() => void)[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      offs.push(
        session.subscribe(() => {
          const { phase, problem } = session.snapshot;
          if (phase === "joined") resolve();
          if (phase === "failed")
            reject(new SignalingError(problem?.code ?? "failed", problem?.message ?? "Could not join."));
        }),
        client.onClose(() =>
          reject(new SignalingError("unreachable", "The connection closed while joining.")),
        ),
      );
      session.join(roomId);
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
