"""Shared by every test folder: nothing here starts anything on import."""

from __future__ import annotations

import pytest
from aiortc.rtcicetransport import RTCIceGatherer


def _no_default_ice_servers(cls: type[RTCIceGatherer]) -> list[object]:
    raise AssertionError(
        "an aiortc RTCPeerConnection without iceServers: aiortc would ask Google's STUN "
        "server, whose failed lookup (no DNS in CI) leaves sockets unclosed; use "
        "tests.support.local_peer_connection() or the server's ice_servers"
    )


@pytest.fixture(autouse=True)
def _no_stun_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach aiortc's default ICE server (stun.l.google.com): every test peer
    connection names its ICE servers, an empty list for host candidates only."""
    monkeypatch.setattr(
        RTCIceGatherer, "getDefaultIceServers", classmethod(_no_default_ice_servers)
    )
