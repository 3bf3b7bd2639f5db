/**
 * Host keys: `POST /api/v1/rooms` answers the creator with a `host_key`; this browser keeps
 * it (localStorage, by room id) and every `join` of that room presents it, which makes the
 * creator a host whatever the room's lock, lobby or password (docs/PROTOCOL.md, hosts).
 */

const STORAGE_KEY = "salon.hostKeys";
/** Rooms remembered at most; the oldest are forgotten first. */
export const MAX_HOST_KEYS = 50;

/** The part of `Storage` used here; tests pass a Map-backed fake. */
export interface KeyStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

type Kept = Record<string, { key: string; at: number }>;

function browserStorage(): KeyStorage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null; // storage blocked (some private modes)
  }
}

function read(storage: KeyStorage): Kept {
  try {
    const value: unknown = JSON.parse(storage.getItem(STORAGE_KEY) ?? "{}");
    return typeof value === "object" && value !== null ? (value as Kept) : {};
  } catch {
    return {};
  }
}

/** Keep the host key of a room this browser created. */
export function rememberHostKey(
  room: string,
  key: string,
  storage: KeyStorage | null = browserStorage(),
  now: number = Date.now(),
): void {
  if (storage === null) return;
  const kept = read(storage);
  kept[`r:${room}`] = { key, at: now }; // a prefix: a room may be called "__proto__"
  const newest = Object.entries(kept)
    .sort(([, a], [, b]) => b.at - a.at)
    .slice(0, MAX_HOST_KEYS);
  try {
    storage.setItem(STORAGE_KEY, JSON.stringify(Object.fromEntries(newest)));
  } catch {
    // Storage full or blocked: the creator joins like anyone else (first in, host anyway).
  }
}

/** The host key kept for a room, or null. */
export function hostKeyFor(room: string, storage: KeyStorage | null = browserStorage()): string | null {
  if (storage === null) return null;
  const entry = read(storage)[`r:${room}`];
  return typeof entry?.key === "string" ? entry.key : null;
}
