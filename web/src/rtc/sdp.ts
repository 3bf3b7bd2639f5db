/**
 * The two things the client reads out of SDP text: which RTCPeerConnection wrote it, and
 * its ICE username fragments. Pure functions over strings.
 */

/**
 * The `<sess-id>` of the `o=` line (RFC 8866 section 5.2). JSEP (RFC 8829 sections 5.2.1
 * and 5.2.2) makes it random per RTCPeerConnection and the same in every later description
 * that connection writes, so it tells one connection from the next. null when absent.
 */
export function sessionIdOf(sdp: string | undefined): string | null {
  const match = /^o=\S+ (\S+) /m.exec(sdp ?? "");
  return match?.[1] ?? null;
}

/** Every `a=ice-ufrag:` value (RFC 8839 section 5.4), once each. */
export function iceUfragsOf(sdp: string | undefined): string[] {
  const found = new Set<string>();
  for (const match of (sdp ?? "").matchAll(/^a=ice-ufrag:(\S+)/gm)) found.add(match[1]!);
  return [...found];
}
