"""The SDK's SDP rewrites: the RTP header extension ids of its later offers stay those
already negotiated (RFC 8285 §6), which Chromium requires."""

from __future__ import annotations

from aiortc import AudioStreamTrack, RTCSessionDescription, VideoStreamTrack

from salon.client.sdp import extension_ids, keep_extension_ids
from tests.support import local_peer_connection

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TWCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
OFFSET = "urn:ietf:params:rtp-hdrext:toffset"

# How Chromium numbers them in its offers (ids 1-4 taken, 14 for toffset in video).
CHROMIUM = {LEVEL: 1, SEND_TIME: 2, TWCC: 3, MID: 4, OFFSET: 14}

AIORTC_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96",
        f"a=extmap:1 {MID}",
        f"a=extmap:2 {LEVEL}",
        "a=rtpmap:96 opus/48000/2",
        "m=video 9 UDP/TLS/RTP/SAVPF 97",
        f"a=extmap:1 {MID}",
        f"a=extmap:3/sendonly {SEND_TIME} some-attribute",
        "",
    ]
)


def test_the_ids_are_read_per_uri_the_first_mapping_winning() -> None:
    assert extension_ids(AIORTC_OFFER) == {MID: 1, LEVEL: 2, SEND_TIME: 3}
    assert extension_ids("v=0\r\na=extmap:x bad\r\na=extmap:5\r\n") == {}


def test_an_offer_keeps_the_ids_negotiated_before() -> None:
    rewritten = keep_extension_ids(AIORTC_OFFER, CHROMIUM)
    lines = rewritten.split("\r\n")
    assert f"a=extmap:4 {MID}" in lines
    assert f"a=extmap:1 {LEVEL}" in lines
    # The direction and the attributes after the URI stay as they were.
    assert f"a=extmap:2/sendonly {SEND_TIME} some-attribute" in lines
    assert lines.count(f"a=extmap:4 {MID}") == 2  # one id per URI in every m-line (BUNDLE)
    # Nothing else changes.
    assert [x for x in lines if "extmap" not in x] == [
        x for x in AIORTC_OFFER.split("\r\n") if "extmap" not in x
    ]


def test_a_new_uri_keeps_its_id_when_free_else_takes_the_lowest_free_one() -> None:
    assert extension_ids(keep_extension_ids(AIORTC_OFFER, {TWCC: 9})) == {
        MID: 1,
        LEVEL: 2,
        SEND_TIME: 3,
    }
    taken = {TWCC: 1, OFFSET: 2, "urn:x": 4}
    assert extension_ids(keep_extension_ids(AIORTC_OFFER, taken)) == {
        MID: 3,
        LEVEL: 5,
        SEND_TIME: 6,
    }


def test_a_new_uri_is_left_out_when_no_one_byte_id_is_free() -> None:
    full = {f"urn:taken:{n}": n for n in range(1, 15)}
    full[MID] = 1
    rewritten = keep_extension_ids(AIORTC_OFFER, full)
    assert extension_ids(rewritten) == {MID: 1}
    assert LEVEL not in rewritten and SEND_TIME not in rewritten


async def test_aiortc_takes_its_own_offer_with_the_ids_kept() -> None:
    pc = local_peer_connection()
    audio, video = AudioStreamTrack(), VideoStreamTrack()
    pc.addTrack(audio)
    pc.addTrack(video)
    try:
        offer = await pc.createOffer()
        assert extension_ids(offer.sdp)[MID] == 1  # aiortc's own numbering
        sdp = keep_extension_ids(offer.sdp, CHROMIUM)
        await pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        assert extension_ids(pc.localDescription.sdp) == {
            MID: CHROMIUM[MID],
            LEVEL: CHROMIUM[LEVEL],
            SEND_TIME: CHROMIUM[SEND_TIME],
        }
    finally:
        await pc.close()
        audio.stop()
        video.stop()
