/**
 * Invitations: a join link the server API mints ends in `#invite=TOKEN` (docs/PROTOCOL.md,
 * `join.invite`). The fragment never reaches a server; this page takes it out of the address
 * bar at once (so it is not shared or screenshotted by accident), keeps it for this tab
 * (sessionStorage, by room) and presents it with every `join` of that room.
 */
import type { KeyStorage } from "./hostKeys";

const PREFIX = "salon.invite.r:";
/** Longer than any invitation a server mints; the server refuses longer ones. */
const MAX_INVITE_CHARS = 512;

export type InviteRole = "host" | "guest";

function tabStorage(): KeyStorage | null {
  try {
    return typeof sessionStorage === "undefined" ? null : sessionStorage;
  } catch {
    return null;
  }
}

/** The invitation in a URL fragment such as `#invite=TOKEN`, or null. */
export function inviteInFragment(hash: string): string | null {
  const token = new URLSearchParams(hash.replace(/^#/, "")).get("invite");
  return token !== null && token !== "" && token.length <= MAX_INVITE_CHARS ? token : null;
}

/**
 * The invitation for `room`: the one in this page's fragment (kept for the tab, and taken
 * out of the address bar), else one kept earlier in this tab; null when there is none.
 */
export function inviteFor(
  room: string,
  storage: KeyStorage | null = tabStorage(),
  where: { hash: string; href: string } | null = typeof location === "undefined" ? null : location,
  replace: (url: string) => void = (url) => history.replaceState(history.state, "", url),
): string | null {
  const fresh = where === null ? null : inviteInFragment(where.hash);
  if (fresh !== null && where !== null) {
    try {
      if (storage !== null) {
        storage.setItem(PREFIX + room, fresh);
        replace(where.href.split("#")[0] ?? where.href); // kept: it need not stay in the address bar
      }
    } catch {
      // Storage blocked: the fragment stays, so later reads on this page still find it.
    }
    return fresh;
  }
  try {
    return storage?.getItem(PREFIX + room) ?? null;
  } catch {
    return null;
  }
}

/** What an invitation says: its role and when it expires (ms since the epoch). */
export interface InviteClaims {
  readonly role: InviteRole;
  readonly expiresMs: number;
}

/**
 * What an invitation says it lets its holder do, and until when. Its payload is readable on
 * purpose (only its signature is secret to the server): the page uses it to say "you are
 * invited as a host", to skip asking for a password, or to say the link has expired. The
 * server decides; a wrong guess here changes nothing. Null for what is not an invitation.
 */
export function inviteClaims(token: string | null): InviteClaims | null {
  if (token === null) return null;
  try {
    const payload = (token.split(".")[0] ?? "").replace(/-/g, "+").replace(/_/g, "/");
    const body: unknown = JSON.parse(atob(payload + "=".repeat((4 - (payload.length % 4)) % 4)));
    if (typeof body !== "object" || body === null) return null;
    const { o: role, x: expires } = body as { o?: unknown; x?: unknown };
    if ((role !== "host" && role !== "guest") || typeof expires !== "number") return null;
    return { role, expiresMs: expires * 1000 };
  } catch {
    return null;
  }
}

/** The role of an invitation still valid at `nowMs`, else null. */
export function inviteRole(token: string | null, nowMs: number = Date.now()): InviteRole | null {
  const claims = inviteClaims(token);
  return claims !== null && claims.expiresMs > nowMs ? claims.role : null;
}

/** Whether `token` is an invitation that has expired by `nowMs`. */
export function inviteExpired(token: string | null, nowMs: number = Date.now()): boolean {
  const claims = inviteClaims(token);
  return claims !== null && claims.expiresMs <= nowMs;
}
