/**
 * The pre-join connection check: fetch the ICE servers (with TURN credentials) over a short
 * greeted signaling connection, then probe them (src/rtc/probe.ts).
 *
 * TURN credentials are only ever handed to a greeted WebSocket (docs/PROTOCOL.md §2.2), so
 * the check says `hello` under a throwaway name and closes as soon as `welcome` arrives; the
 * credentials stay valid for hours after. A REST endpoint could list the STUN servers, but
 * not prove that the relay accepts the credentials, which is the question that matters.
 */
import { toRtcIceServers } from "../rtc/ice";
import { probeIce, type ProbeOptions, type ProbeResult } from "../rtc/probe";
import { SignalingClient, signalingUrl, type SocketFactory } from "../signaling/client";

export type ConnectionCheck =
  | { readonly step: "checking" }
  | { readonly step: "done"; readonly result: ProbeResult }
  | { readonly step: "unavailable" }; // the server could not be asked

export interface CheckOptions extends ProbeOptions {
  url?: string;
  socketFactory?: SocketFactory;
}

/** A name no person would pick, unique enough not to collide with another check. */
export function checkName(): string {
  return `connection check ${Math.random().toString(36).slice(2, 8)}`;
}

/** Ask the server for ICE servers, then gather candidates with them. Never rejects. */
export async function checkConnection(options: CheckOptions = {}): Promise<ConnectionCheck> {
  const url = options.url ?? signalingUrl(window.location);
  const client = new SignalingClient(url, options.socketFactory);
  let iceServers: RTCIceServer[];
  try {
    const welcome = await client.connect(checkName());
    iceServers = toRtcIceServers(welcome.ice_servers);
  } catch {
    return { step: "unavailable" };
  } finally {
    client.close();
  }
  return { step: "done", result: await probeIce(iceServers, options) };
}
