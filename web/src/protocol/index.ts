/** The wire protocol: generated types plus the few helpers the client needs. */
import type { ClientMessage, ServerMessage } from "./generated";

export type {
  ChatEntry,
  ClientMessage,
  IceCandidate,
  IceServer,
  Joined,
  Limits,
  MemberInfo,
  Reaction,
  Recording,
  RecordingFile,
  ServerMessage,
  SessionDescription,
  Welcome,
} from "./generated";
export type { Error as ErrorMessage } from "./generated";

/**
 * Protocol versions this client speaks, oldest first. 2 adds recording; 3 adds rooms whose
 * media goes through the server's SFU (src/rtc/sfu.ts), and is 2 otherwise.
 */
export const PROTOCOL_VERSIONS = [1, 2, 3] as const;

export type ServerType = ServerMessage["type"];
/** The server message whose `type` is `T`. */
export type ServerOf<T extends ServerType> = Extract<ServerMessage, { type: T }>;
export type ClientType = ClientMessage["type"];

/** What a member is sending: microphone, camera and screen share. */
export interface Media {
  mic: boolean;
  camera: boolean;
  screen: boolean;
}

/** Parse one frame from the server; `null` when it is not a JSON object with a `type`. */
export function decodeServer(frame: string): ServerMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(frame);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || !("type" in value)) return null;
  if (typeof (value as { type: unknown }).type !== "string") return null;
  return value as ServerMessage;
}

export function encodeClient(message: ClientMessage): string {
  return JSON.stringify(message);
}
