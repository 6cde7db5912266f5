"""Where notices may go: public addresses only, unless an operator allows a network.

A notice endpoint's URL is checked when it is registered or changed, and again before every
attempt, against the addresses its host resolves to *then*: a name that resolved to a
public address at registration and to ``127.0.0.1`` later (DNS rebinding) is refused at send
time. The attempt then connects to the address that was checked, not to a second lookup of
the name, and names the host in ``Host`` and in TLS (SNI and certificate checks).

Refused: loopback, link-local (which holds the cloud metadata address 169.254.169.254),
private (RFC 1918), shared (RFC 6598, where some clouds put metadata), unique-local,
unspecified, multicast and reserved addresses, and IPv4 addresses written as IPv6 (mapped).
``REGISTRY_NOTICE_ALLOWED_NETWORKS`` lists networks that are allowed even so (on-premise
receivers).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from service.errors import InvalidInput

__all__ = [
    "BLOCKED_NETWORKS",
    "Network",
    "NotAUrl",
    "Refused",
    "Target",
    "check_endpoint_url",
    "parse_networks",
    "resolve_target",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

BLOCKED_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # unspecified, "this network"
        "10.0.0.0/8",  # private (RFC 1918)
        "100.64.0.0/10",  # shared address space (RFC 6598); 100.100.100.200 is a metadata service
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, 169.254.169.254 the cloud metadata service
        "172.16.0.0/12",  # private (RFC 1918)
        "192.0.0.0/24",  # IETF protocol assignments
        "192.168.0.0/16",  # private (RFC 1918)
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/128",  # unspecified
        "::1/128",  # loopback
        "64:ff9b::/96",  # NAT64: an IPv4 address in disguise
        "fc00::/7",  # unique-local (fd00:ec2::254 is a metadata service)
        "fe80::/10",  # link-local
        "ff00::/8",  # multicast
    )
)

#: Seconds a name lookup may take before the endpoint is refused (registration) or the
#: attempt fails (send time).
LOOKUP_SECONDS = 3.0


class Refused(Exception):
    """The URL's host is, or resolves to, an address notices may not go to."""


class NotAUrl(Refused):
    """Not a URL an HTTP request can be sent to at all."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt connects: the URL with its host replaced by a checked address."""

    url: httpx.URL
    #: The ``Host`` header: the name (and port) the URL gave.
    host: str
    #: The name the TLS certificate must be valid for.
    server_name: str


def parse_networks(value: str) -> tuple[Network, ...]:
    """``REGISTRY_NOTICE_ALLOWED_NETWORKS``: comma-separated addresses or networks."""
    items = [part.strip() for part in value.split(",") if part.strip()]
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _blocked(address: Address, allowed: tuple[Network, ...]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in net for net in allowed if net.version == address.version):
        return False
    return any(address in net for net in BLOCKED_NETWORKS if net.version == address.version)


async def _addresses(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(LOOKUP_SECONDS):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # Drop an IPv6 zone ("fe80::1%eth0"); the address itself is what is checked.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def resolve_target(url: str, *, allowed: tuple[Network, ...]) -> Target:
    """The address one attempt must connect to; raises ``Refused`` for a forbidden one
    and ``OSError``/``TimeoutError`` when the name does not resolve."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise NotAUrl("not a URL notices can be sent to") from exc
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise NotAUrl("not a URL notices can be sent to")
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await _addresses(host, port)
    if not addresses:
        raise OSError(f"{host} has no address")
    # Every address the name has must be allowed: a client may pick any of them.
    if any(_blocked(a, allowed) for a in addresses):
        raise Refused(f"{host} is, or resolves to, an address notices may not go to")
    return Target(
        url=parsed.copy_with(host=str(addresses[0])),
        host=parsed.netloc.decode("ascii"),
        server_name=host,
    )


async def check_endpoint_url(url: str, *, allowed: tuple[Network, ...]) -> None:
    """Refuse, when it is registered, an endpoint notices could not be sent to.

    A name that does not resolve (yet) is accepted: it is checked again at every attempt.
    """
    try:
        await resolve_target(url, allowed=allowed)
    except NotAUrl as exc:
        raise InvalidInput("the endpoint's URL is not one an HTTP request can be sent to") from exc
    except Refused as exc:
        raise InvalidInput(
            "the endpoint's host is, or resolves to, a loopback, link-local, private or "
            "otherwise non-public address; notices go to public addresses only "
            "(an operator can allow a network with REGISTRY_NOTICE_ALLOWED_NETWORKS)"
        ) from exc
    except (OSError, TimeoutError, UnicodeError, ValueError):
        return
