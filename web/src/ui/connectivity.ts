import type { ConnectionCheck } from "../room/check";
import type { ProbeResult } from "../rtc/probe";

export type Verdict = "ok" | "missing" | "problem" | "off";

export interface Line {
  key: "local" | "direct" | "relay";
  verdict: Verdict;
  text: string;
}

/** The connection check's findings as sentences, one per path. */
export function probeLines(r: ProbeResult): Line[] {
  const local: Line = r.local
    ? {
        key: "local",
        verdict: "ok",
        text: "Local network: people on your network can connect to you directly.",
      }
    : { key: "local", verdict: "missing", text: "Local network: no local address found." };
  let direct: Line;
  if (r.direct)
    direct = { key: "direct", verdict: "ok", text: "Direct path: found through your router (STUN)." };
  else if (r.stunConfigured || r.turnConfigured)
    direct = { key: "direct", verdict: "missing", text: "Direct path: none found through your router." };
  else
    direct = {
      key: "direct",
      verdict: "off",
      text: "Direct path: not checked (this server has no STUN server).",
    };
  return [local, direct, relayLine(r)];
}

function relayLine(r: ProbeResult): Line {
  if (!r.turnConfigured)
    return {
      key: "relay",
      verdict: "off",
      text: "Relay: this server has none; calls across strict firewalls may fail.",
    };
  if (r.relay)
    return {
      key: "relay",
      verdict: "ok",
      text: "Relay: available, so calls work even through strict firewalls.",
    };
  const why = {
    refused: "the relay server refused the credentials.",
    unreachable: "the relay server could not be reached.",
    unknown: "the relay server could not be reached or refused the credentials.",
  }[r.relayProblem ?? "unknown"];
  return { key: "relay", verdict: "problem", text: `Relay: not available, ${why}` };
}

/** How the pre-join summary rates the connection (also its `data-verdict`). */
export type Readiness = "checking" | "unknown" | "ready" | "limited" | "poor";

export interface Summary {
  readiness: Readiness;
  /** One plain sentence, without the words of the trade ("STUN", "relay", "NAT"). */
  text: string;
}

/**
 * The connection check in one plain sentence for everyone; the details (`probeLines`) sit
 * behind a disclosure for those who want them.
 *
 * - a working relay: calls connect from anywhere;
 * - a direct path without a relay: most calls connect, the strictest networks may not;
 * - only a local address: people on the same network can be reached — a limit of this server
 *   when it offers no way through (nothing configured), a problem of this network otherwise;
 * - nothing: calls are unlikely to connect.
 */
export function connectionSummary(check: ConnectionCheck): Summary {
  if (check.step === "checking") return { readiness: "checking", text: "Checking your connection…" };
  if (check.step === "unavailable")
    return { readiness: "unknown", text: "Your connection could not be checked. You can still join." };
  const r = check.result;
  if (r.relay) return { readiness: "ready", text: "Your connection is ready." };
  if (r.direct)
    return {
      readiness: "ready",
      text: "Your connection is ready. Calls with people on very strict networks may not connect.",
    };
  if (r.local && !r.stunConfigured && !r.turnConfigured)
    return {
      readiness: "limited",
      text: "Calls should work with people on your own network, but may not connect with people elsewhere.",
    };
  if (r.local)
    return {
      readiness: "poor",
      text: "Calls may not connect from this network: only people on your own network can reach you.",
    };
  return {
    readiness: "poor",
    text: "Calls may not connect from this network: no way to reach you was found.",
  };
}
