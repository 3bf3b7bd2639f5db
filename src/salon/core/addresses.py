"""The key a client address is counted by, for every per-address limit and for removals."""

from __future__ import annotations

import ipaddress


def client_key(address: str) -> str:
    """``address`` as per-address limits count it: an IPv4 address as it is, and an
    IPv4-mapped IPv6 address (``::ffff:a.b.c.d``, RFC 4291 2.5.5.2) as that IPv4 address; an
    IPv6 address as its /64 network, written ``2001:db8:1:2::/64``, since one subscriber or
    site gets at least a /64 and picks addresses in it freely (RFC 6177, RFC 8981); anything
    that is not an IP address (a Unix socket, "unknown") as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
