"""Small readings and two rewrites of SDP text (RFC 8866) that negotiation needs.

aiortc keeps its parsed descriptions private; these read the few lines the SDK compares:
``o=`` (which connection sent a description), ``a=ice-ufrag`` (RFC 8839 §5.4: its ICE
generation) and ``a=fingerprint`` (RFC 8122 §5: its DTLS certificate); and they rewrite the
``o=`` line and the ``a=extmap`` ids (RFC 8285) of the SDK's own offers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aiortc import RTCIceCandidate, RTCPeerConnection
from aiortc.sdp import candidate_from_sdp

from salon.protocol.messages import IceCandidate


def _attribute_values(sdp: str, prefix: str) -> frozenset[str]:
    return frozenset(
        line[len(prefix) :].strip() for line in sdp.splitlines() if line.startswith(prefix)
    )


def ice_ufrags(sdp: str) -> frozenset[str]:
    """Every ``a=ice-ufrag`` value of ``sdp`` (one per transport; one with BUNDLE)."""
    return _attribute_values(sdp, "a=ice-ufrag:")


def transport_identity(sdp: str) -> frozenset[str]:
    """The ICE credentials and DTLS fingerprints of ``sdp``: two descriptions with different
    identities belong to different transports (a new connection, or an ICE restart)."""
    return (
        ice_ufrags(sdp)
        | _attribute_values(sdp, "a=ice-pwd:")
        | _attribute_values(sdp, "a=fingerprint:")
    )


def session_id(sdp: str) -> str | None:
    """The ``sess-id`` of the ``o=`` line (RFC 8866 §5.2), ``None`` when there is none."""
    for line in sdp.splitlines():
        if line.startswith("o="):
            fields = line[2:].split()
            return fields[1] if len(fields) >= 6 else None
    return None


def with_origin(sdp: str, session: int, version: int) -> str:
    """``sdp`` with its ``o=`` line naming ``session`` and ``version``.

    aiortc writes the current NTP second as both, so two connections of one second would
    look alike; the browser client tells a replaced connection's late signals by ``sess-id``
    (JSEP, RFC 9429 §5.2.1: unique per connection, version grows per description)."""
    lines = sdp.split("\r\n")
    for index, line in enumerate(lines):
        if line.startswith("o="):
            fields = line[2:].split()
            if len(fields) >= 6:
                fields[1], fields[2] = str(session), str(version)
                lines[index] = "o=" + " ".join(fields)
            break
    return "\r\n".join(lines)


def to_aiortc(candidate: IceCandidate) -> RTCIceCandidate | None:
    """A received ``RTCIceCandidateInit`` (W3C webrtc-pc §4.8.1) for aiortc's
    ``addIceCandidate``; ``None`` for the end-of-candidates marker (empty ``candidate``).
    ``ValueError`` when the text is not a candidate (RFC 8839 §5.1)."""
    text = candidate.candidate.strip()
    if not text:
        return None
    text = text.removeprefix("a=").removeprefix("candidate:")
    try:
        parsed = candidate_from_sdp(text)
    except (AssertionError, ValueError, IndexError) as exc:
        raise ValueError(f"not an ICE candidate: {text[:80]!r}") from exc
    parsed.sdpMid = candidate.sdpMid
    parsed.sdpMLineIndex = candidate.sdpMLineIndex
    if parsed.sdpMid is None and parsed.sdpMLineIndex is None:
        parsed.sdpMLineIndex = 0
    return parsed


EXTMAP: Final = "a=extmap:"
ONE_BYTE_IDS: Final = range(1, 15)  # RFC 8285 §4.2: ids 1-14 fit the one-byte header


def _extmap(line: str) -> tuple[int, str, str] | None:
    """``a=extmap:<id>[/<direction>] <uri> [<attributes>]`` (RFC 8285 §8) as (id, the
    ``/<direction>`` part or ``""``, the uri and the rest); ``None`` for any other line."""
    if not line.startswith(EXTMAP):
        return None
    value, _, rest = line[len(EXTMAP) :].partition(" ")
    number, slash, direction = value.partition("/")
    if not (number.isascii() and number.isdigit()) or not rest.strip():
        return None
    return int(number), slash + direction, rest.strip()


def extension_ids(sdp: str) -> dict[str, int]:
    """The id of each RTP header extension (by URI) that ``sdp`` maps, the first mapping of
    a URI winning (with BUNDLE one map serves every m-line)."""
    ids: dict[str, int] = {}
    for line in sdp.splitlines():
        parsed = _extmap(line)
        if parsed is not None:
            ids.setdefault(parsed[2].split()[0], parsed[0])
    return ids


def keep_extension_ids(sdp: str, negotiated: Mapping[str, int]) -> str:
    """``sdp`` (an offer) with each ``a=extmap`` id set to the one ``negotiated`` for its URI.

    RFC 8285 §6: an extension's id is not changed within a session, and Chromium refuses an
    offer that does ("RTP extension ID reassignment not supported"). aiortc numbers the
    extensions of every offer it makes the same way (1, 2, 3), whatever an earlier offer of
    the other side chose, so the SDK's later offers put back the ids already in use. A URI
    not negotiated yet keeps its id when no negotiated URI holds it, else takes the lowest
    free one-byte id; the line is left out when none is free (the extension is then not
    offered)."""
    ids = dict(negotiated)
    taken = set(ids.values())
    lines = sdp.split("\r\n")
    kept: list[str] = []
    for line in lines:
        parsed = _extmap(line)
        if parsed is None:
            kept.append(line)
            continue
        number, direction, rest = parsed
        uri = rest.split()[0]
        if uri not in ids:
            free = [n for n in ONE_BYTE_IDS if n not in taken]
            if number in taken or number not in ONE_BYTE_IDS:
                if not free:
                    continue
                number = free[0]
            ids[uri] = number
            taken.add(number)
        kept.append(f"{EXTMAP}{ids[uri]}{direction} {rest}")
    return "\r\n".join(kept)


def negotiated_extension_ids(pc: RTCPeerConnection) -> dict[str, int]:
    """The RTP header extension ids (by URI) already in use on ``pc``: the remote
    description's, then our own (RFC 8285 §6: kept for the whole session)."""
    ids: dict[str, int] = {}
    for description in (pc.remoteDescription, pc.localDescription):
        if description is not None:
            for uri, number in extension_ids(description.sdp).items():
                if uri not in ids and number not in ids.values():
                    ids[uri] = number
    return ids
