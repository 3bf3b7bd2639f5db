/**
 * ICE servers as the server hands them out (docs/PROTOCOL.md §2.2), turned into what the
 * browser takes, and when to ask for fresh TURN credentials. No timers, no DOM: pure values.
 */
import type { IceServer } from "../protocol";

/** Never refresh sooner than this, nor later than this before expiry (clocks differ). */
export const MIN_REFRESH_MS = 60_000;
export const EXPIRY_MARGIN_MS = 60_000;

/** The browser's RTCIceServer objects: `null` username/credential members dropped (§2.2). */
export function toRtcIceServers(servers: readonly IceServer[]): RTCIceServer[] {
  return servers.map((s) => ({
    urls: [...s.urls],
    ...(s.username != null ? { username: s.username } : {}),
    ...(s.credential != null ? { credential: s.credential } : {}),
  }));
}

/** Whether any server is a TURN relay (turn: or turns:). */
export function hasTurn(servers: readonly { urls: string | readonly string[] }[]): boolean {
  return servers.some((s) => (typeof s.urls === "string" ? [s.urls] : s.urls).some(isTurnUrl));
}

export function isTurnUrl(url: string): boolean {
  return /^turns?:/i.test(url);
}

/**
 * The earliest TURN credential expiry, in Unix milliseconds: the TURN REST username is
 * `<expiry Unix seconds>:<member id>`. null when no server carries such a username.
 */
export function turnExpiryMs(servers: readonly IceServer[]): number | null {
  let earliest: number | null = null;
  for (const server of servers) {
    const match = /^(\d+):/.exec(server.username ?? "");
    if (match === null) continue;
    const expiry = Number(match[1]) * 1000;
    if (earliest === null || expiry < earliest) earliest = expiry;
  }
  return earliest;
}

/**
 * How long to wait before `ice_refresh`: half the remaining lifetime as this clock sees it,
 * no later than `EXPIRY_MARGIN_MS` before expiry, and never sooner than `MIN_REFRESH_MS`
 * (which wins when the two collide, so a skewed clock cannot make the client refresh in a loop).
 */
export function refreshDelayMs(expiryMs: number, nowMs: number): number {
  const remaining = expiryMs - nowMs;
  const delay = Math.min(remaining / 2, remaining - EXPIRY_MARGIN_MS);
  return Math.max(MIN_REFRESH_MS, Math.floor(delay));
}

/**
 * The diagnostic `?ice=relay` setting: send every connection through the TURN relay
 * (`iceTransportPolicy: "relay"`, webrtc-pc 4.2.1), to check that the relay works.
 */
export function iceTransportPolicy(search: string): RTCIceTransportPolicy {
  return new URLSearchParams(search).get("ice") === "relay" ? "relay" : "all";
}

/** `iceTransportPolicy` from the page's address, "all" outside a browser. */
export function pageIceTransportPolicy(): RTCIceTransportPolicy {
  return typeof window === "undefined" ? "all" : iceTransportPolicy(window.location.search);
}
