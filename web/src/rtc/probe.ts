/**
 * The pre-join connection check: a throwaway RTCPeerConnection gathers ICE candidates
 * (RFC 8445 section 5.1.1) with the configured servers for a few seconds, and the kinds of
 * candidate it finds say which paths this browser has:
 *
 * - `host`: an address of this device, for peers on the same network;
 * - `srflx` (server reflexive): this device's address as a STUN server sees it, a direct path
 *   through NAT;
 * - `relay`: an address on the TURN server, which proves the relay is reachable and accepted
 *   the credentials (an Allocate succeeded, RFC 8656 section 7).
 *
 * When TURN is configured but no relay candidate comes, the `icecandidateerror` events
 * (webrtc-pc 4.8.2) tell why: STUN error 401 means the relay refused the credentials, 701
 * that it could not be reached at all.
 */
import { hasTurn, isTurnUrl } from "./ice";

/** Why the TURN server gave no relay candidate; null when it did, or none is configured. */
export type RelayProblem = "refused" | "unreachable" | "unknown" | null;

export interface ProbeResult {
  /** A host candidate: this device can be reached on its own network. */
  readonly local: boolean;
  /** A server-reflexive candidate: a direct path through NAT, found with STUN. */
  readonly direct: boolean;
  /** A relay candidate: the TURN server works with the credentials handed out. */
  readonly relay: boolean;
  readonly stunConfigured: boolean;
  readonly turnConfigured: boolean;
  readonly relayProblem: RelayProblem;
}

export type ProbePeerConnectionFactory = (config: RTCConfiguration) => RTCPeerConnection;

export interface ProbeOptions {
  /** How long to gather before deciding; gathering usually completes well before. */
  gatherMs?: number;
  factory?: ProbePeerConnectionFactory;
}

export const PROBE_GATHER_MS = 6000;

/** STUN error codes in `icecandidateerror` (RFC 8489 section 14.8; 701 is webrtc-pc's). */
const UNAUTHORIZED = 401;
const FORBIDDEN = 403;
const UNREACHABLE = 701;

/** Gather candidates with `iceServers` and say which paths exist. Never rejects. */
export async function probeIce(iceServers: RTCIceServer[], options: ProbeOptions = {}): Promise<ProbeResult> {
  const factory = options.factory ?? ((config) => new RTCPeerConnection(config));
  const turnConfigured = hasTurn(iceServers);
  const stunConfigured = iceServers.some((s) => urlsOf(s).some((u) => /^stuns?:/i.test(u)));
  const kinds = new Set<string>();
  const turnErrors: number[] = [];
  let pc: RTCPeerConnection | null = null;
  try {
    pc = factory({ iceServers, iceCandidatePoolSize: 0 });
    const probe = pc;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.gatherMs ?? PROBE_GATHER_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      probe.onicecandidate = ({ candidate }) => {
        if (candidate === null) return done(); // gathering complete (webrtc-pc 4.4.1.1)
        const kind = candidate.type ?? candidateType(candidate.candidate);
        if (kind) kinds.add(kind);
        if (kinds.has("relay") && (kinds.has("srflx") || !stunConfigured)) done();
      };
      probe.onicecandidateerror = (event) => {
        if (isTurnUrl(event.url ?? "")) turnErrors.push(event.errorCode);
      };
      // A data channel gives the offer an m-section, which is what makes ICE gather.
      probe.createDataChannel("probe");
      probe
        .createOffer()
        .then((offer) => probe.setLocalDescription(offer))
        .catch(done);
    });
  } catch {
    // No WebRTC at all (or it refused the configuration): report nothing found.
  } finally {
    if (pc !== null) {
      pc.onicecandidate = null;
      pc.onicecandidateerror = null;
      pc.close();
    }
  }
  const relay = kinds.has("relay");
  return {
    local: kinds.has("host"),
    direct: kinds.has("srflx"),
    relay,
    stunConfigured,
    turnConfigured,
    relayProblem: turnConfigured && !relay ? relayProblem(turnErrors) : null,
  };
}

function relayProblem(errorCodes: readonly number[]): RelayProblem {
  if (errorCodes.some((c) => c === UNAUTHORIZED || c === FORBIDDEN)) return "refused";
  if (errorCodes.some((c) => c === UNREACHABLE)) return "unreachable";
  return "unknown";
}

/** The `typ` of an SDP candidate line (RFC 8839 section 5.1), for browsers without `.type`. */
export function candidateType(line: string): string | null {
  return / typ (host|srflx|prflx|relay)\b/.exec(line)?.[1] ?? null;
}

function urlsOf(server: RTCIceServer): string[] {
  return typeof server.urls === "string" ? [server.urls] : [...server.urls];
}
