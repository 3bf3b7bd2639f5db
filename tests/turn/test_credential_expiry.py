"""A TURN credential that expires during a call (RELIABILITY row 38), against a real coturn.

Browsers keep using the allocation they made: Chromium refreshes it (RFC 8656 section 8),
its permissions and channels with the credential it allocated with, on the same 5-tuple. coturn
checks a TURN REST username's expiry only when it derives the key for a new session; an
existing allocation is checked against the key it already holds. So after the expiry the
running allocation still refreshes and relays, while a new allocation with the same
credential gets 401: the client must fetch fresh credentials (``ice_refresh``) before an ICE
restart, which it does (web/src/rtc/recovery.ts).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from salon.core.turn import turn_credential
from salon.core.turnconfig import PeerPolicy
from salon.server.coturn import Coturn
from tests.turn.conftest import SECRET
from tests.turn.stun import OK, TurnClient

TTL_S = 2  # the credential's life; coturn compares whole seconds


def test_a_running_allocation_outlives_its_credential(make_coturn: Callable[..., Coturn]) -> None:
    turn = make_coturn(peers=PeerPolicy.ANY)  # the peer is a socket on loopback
    cred = turn_credential(SECRET, "alice", int(time.time()), TTL_S)
    client = TurnClient("127.0.0.1", turn.port, cred.username, cred.password)
    late = TurnClient("127.0.0.1", turn.port, cred.username, cred.password)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(2.0)
        peer_ip, peer_port = peer.getsockname()
        try:
            assert client.allocate() == OK
            assert client.create_permission(peer_ip, peer_port) == OK
            assert client.relayed is not None
            # Until the expiry has passed by coturn's clock (whole seconds).
            time.sleep(max(0.0, cred.expires_at + 1.1 - time.time()))
            assert time.time() > cred.expires_at + 1

            # A new allocation with this credential is refused: it has expired ...
            assert late.allocate() == 401
            # ... but the running allocation refreshes, renews its permission, binds a
            # channel (what Chromium does with the credential it has) ...
            assert client.refresh() == OK
            assert client.create_permission(peer_ip, peer_port) == OK
            assert client.channel_bind(0x4000, peer_ip, peer_port) == OK
            # ... and relays both ways (back over the channel).
            client.send(peer_ip, peer_port, b"after expiry")
            data, source = peer.recvfrom(2048)
            assert (data, source) == (b"after expiry", client.relayed)
            peer.sendto(b"reply", client.relayed)
            assert client.receive() == ((peer_ip, peer_port), b"reply")
        finally:
            client.close()
            late.close()
    # A fresh credential for the same member still allocates: only the old one is spent.
    fresh = turn_credential(SECRET, "alice", int(time.time()), 600)
    again = TurnClient("127.0.0.1", turn.port, fresh.username, fresh.password)
    try:
        assert again.allocate() == OK
    finally:
        again.close()
