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
