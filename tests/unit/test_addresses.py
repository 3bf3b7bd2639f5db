"""What per-address limits count a client by (salon.core.addresses.client_key)."""

from __future__ import annotations

import pytest

from salon.core.addresses import client_key


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("::ffff:198.51.100.7", "198.51.100.7"),  # IPv4-mapped: the same client
        ("2001:db8:1:2::10", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),  # the same /64
        ("2001:db8:1:3::10", "2001:db8:1:3::/64"),  # the next /64: another client
        ("::1", "::/64"),
        ("unknown", "unknown"),
        ("/run/salon.sock", "/run/salon.sock"),
    ],
)
def test_a_client_is_counted_by_its_ipv4_address_or_its_ipv6_64(address: str, key: str) -> None:
    assert client_key(address) == key
