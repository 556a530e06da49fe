"""Who is asking: the client address that every limit counts by (login, sign-up, training).

X-Forwarded-For is believed only from proxies listed in FORWARDED_ALLOW_IPS (default: none).
That holds whatever uvicorn was told: uvicorn's own ProxyHeadersMiddleware is on by default and
trusts 127.0.0.1, and when it rewrites the peer it leaves the header in place, so the rewrite
can be recognised here and undone.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.requests import HTTPConnection

from ..config import Settings

#: The address of a request that uvicorn took from X-Forwarded-For sent by a proxy we do not
#: trust: that proxy's own address is lost, so all such requests count as one client.
UNTRUSTED_PROXY = "untrusted-proxy"
MAX_LENGTH = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """FORWARDED_ALLOW_IPS parsed: `*`, or addresses and networks separated by commas."""

    def __init__(self, spec: str) -> None:
        parts = [part.strip() for part in spec.split(",") if part.strip()]
        self.everyone = "*" in parts
        self.networks: list[Network] = []
        self.names: set[str] = set()
        for part in parts:
            try:
                self.networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                self.names.add(part)  # e.g. a unix socket's name

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks or self.names)

    def __contains__(self, host: str | None) -> bool:
        if self.everyone:
            return True
        if not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host in self.names
        return any(address in network for network in self.networks)


@lru_cache(maxsize=8)
def trusted_proxies(spec: str) -> TrustedProxies:
    return TrustedProxies(spec)


def _host_port(entry: str) -> tuple[str, int]:
    """An X-Forwarded-For entry as (host, port), parsed the way uvicorn parses it."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else 0
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return (host, int(port)) if port.isdigit() else (entry, 0)
    return entry, 0


def _forwarded_for(scope) -> list[str]:
    values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
    return [entry.strip() for entry in ",".join(values).split(",")] if values else []


def normalise(host: str) -> str:
    """The address limits count by: an IP in canonical form (an IPv6 client is its /64, the
    block one subscriber is given), anything else cut to a storable length."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.replace("\x00", "\ufffd")[:MAX_LENGTH] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_address(request: HTTPConnection, settings: Settings) -> str:
    """The client's address: the peer, or the nearest untrusted hop of X-Forwarded-For when the
    peer is a trusted proxy."""
    scope = request.scope
    host, port = scope.get("client") or (None, None)
    chain = _forwarded_for(scope)
    trusted = trusted_proxies(settings.forwarded_allow_ips)
    peer_trusted = host in trusted
    if chain and (host, port) in {_host_port(entry) for entry in chain}:
        # uvicorn replaced the peer with an entry of this header (a real peer has a port, and
        # sends no header naming itself with it): the connection came from a proxy uvicorn
        # trusts. If we trust none, that proxy is the client; else it is taken to be one of
        # ours (`backprop serve` gives uvicorn our list) and the chain is walked here.
        if not trusted:
            return UNTRUSTED_PROXY
        peer_trusted = True
    if peer_trusted and chain:
        for entry in reversed(chain):
            hop = _host_port(entry)[0]
            if hop not in trusted:
                return normalise(hop)
        return normalise(_host_port(chain[0])[0])  # every hop trusted: the first one it is
    return normalise(host or "unknown")
