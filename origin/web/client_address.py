"""The client's address for rate limits, behind a CDN or edge (pure).

uvicorn's own X-Forwarded-For handling is switched off (gunicorn_conf.py): it trusted any value from a
trusted peer, addresses or not. Here: when the TCP peer is a trusted proxy (SPILLWAY_TRUSTED_PROXIES), the
client is the right-most X-Forwarded-For entry that is not itself a trusted proxy; every entry must parse as
an IP address, or the peer is used. From an untrusted peer the header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_FORWARDED_ENTRIES = 32


def parse_networks(spec: str) -> tuple[Network, ...]:
    """`127.0.0.1/32, 10.0.0.0/8` → networks. Raises ValueError for anything that is not a network."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if part:
            out.append(ipaddress.ip_network(part, strict=False))
    return tuple(out)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    peer = peer or "unknown"
    if not forwarded_for or not _trusted(peer, trusted):
        return peer
    entries = [e.strip() for e in forwarded_for.split(",")][-MAX_FORWARDED_ENTRIES:]
    for entry in reversed(entries):
        try:
            ip = ipaddress.ip_address(entry)
        except ValueError:
            return peer  # not an address: the chain cannot be trusted
        if not any(ip in net for net in trusted):
            return str(ip)
    return peer
