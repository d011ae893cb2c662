"""Where destinations may reach: public addresses, allowed networks, and paths under one root.

The text of a URL is checked when it is set (a 400 names the reason) and the resolved address
or real path again when the destination connects, so a DNS answer or a symlink that changed
in between cannot lead a destination somewhere the URL check refused (ADR 0011).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.core.settings import Settings, sqlite_paths
from app.destinations.base import DestinationError, InvalidDestinationURL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names that only mean something inside a host or a cluster; their addresses must be allowed
# explicitly even if they happen to resolve to public ones.
INTERNAL_NAMES = ("localhost",)
INTERNAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".svc",
    ".cluster.local",
    ".internal",
    ".localdomain",
    ".home.arpa",
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# SQLite keeps these beside the database file; none of them may be a destination either.
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


class UnresolvableHost(DestinationError):
    """A destination host name has no address now (DNS may answer again later)."""


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """What destinations may reach: CIDRs beyond the public internet, and a root for paths.

    `root=None` means paths are not confined; only tests and benchmarks build such a policy.
    """

    root: Path | None
    allowed_networks: tuple[IPNetwork, ...] = ()
    protected_paths: tuple[Path, ...] = field(default_factory=tuple)

    @classmethod
    def unrestricted(cls) -> DestinationPolicy:
        """Any address and any path: for tests and benchmarks of the destinations themselves."""
        return cls(
            root=None,
            allowed_networks=(
                ipaddress.IPv4Network("0.0.0.0/0"),
                ipaddress.IPv6Network("::/0"),
            ),
        )

    @classmethod
    def of(
        cls,
        root: Path | str | None,
        allowed_networks: Iterable[IPNetwork] = (),
        *,
        protected_paths: Iterable[Path | str] = (),
    ) -> DestinationPolicy:
        """Builds a policy, resolving the root and the protected files (symlinks followed)."""
        return cls(
            root=None if root is None else Path(root).resolve(),
            allowed_networks=tuple(allowed_networks),
            protected_paths=tuple(
                Path(str(path) + suffix).resolve()
                for path in protected_paths
                for suffix in _SQLITE_COMPANIONS
            ),
        )

    def allowed_explicitly(self, address: IPAddress) -> bool:
        """True when the address lies in one of the operator's allowed networks."""
        return any(address in network for network in self.allowed_networks)

    def address_refusal(self, address: IPAddress, *, internal_name: bool = False) -> str | None:
        """Why the address may not be reached, or None when it may."""
        if self.allowed_explicitly(address):
            return None
        if internal_name:
            return "a cluster- or host-internal name"
        for inner in _embedded(address):
            if self.allowed_explicitly(inner):
                continue
            if not inner.is_global or inner.is_multicast:
                return _kind(inner)
        return None

    def check_address(self, host: str, address: IPAddress) -> None:
        """Raises DestinationError when a resolved address of `host` may not be reached."""
        refusal = self.address_refusal(address, internal_name=is_internal_name(host))
        if refusal is not None:
            raise DestinationError(
                f"destination host {host!r} resolves to {address}, {refusal}; "
                f"allow it with CONNECTOR_DESTINATION_ALLOWED_NETWORKS"
            )

    def check_host_text(self, host: str) -> None:
        """Raises InvalidDestinationURL when the host as written is refused (no DNS lookup)."""
        literal = parse_ip(host)
        if literal is not None:
            refusal = self.address_refusal(literal)
            if refusal is not None:
                raise InvalidDestinationURL(
                    f"destination_url: host {host} is {refusal}; destinations reach only public "
                    "addresses unless CONNECTOR_DESTINATION_ALLOWED_NETWORKS allows it"
                )
            return
        if is_internal_name(host) and not self.allowed_networks:
            raise InvalidDestinationURL(
                f"destination_url: host {host!r} is a cluster- or host-internal name; "
                "destinations reach only public addresses unless "
                "CONNECTOR_DESTINATION_ALLOWED_NETWORKS allows its network"
            )

    def confine(self, path: Path, what: str) -> Path:
        """Returns the real path (symlinks resolved) if it lies under the root; raises otherwise."""
        try:
            real = path.resolve()
        except (OSError, RuntimeError, ValueError) as error:
            raise InvalidDestinationURL(f"destination_url: {what} {path} cannot be resolved") from (
                error
            )
        if real in self.protected_paths:
            raise InvalidDestinationURL(
                f"destination_url: {what} {path} is the service's own database"
            )
        if self.root is not None and not real.is_relative_to(self.root):
            raise InvalidDestinationURL(
                f"destination_url: {what} {path} is outside CONNECTOR_DESTINATION_ROOT "
                f"({self.root})"
            )
        return real


def parse_ip(host: str) -> IPAddress | None:
    """Returns the address if the host is an IP literal (brackets allowed), else None."""
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_internal_name(host: str) -> bool:
    """True for names that only resolve inside a host or cluster (localhost, *.svc, ...)."""
    name = host.lower().rstrip(".")
    return name in INTERNAL_NAMES or name.endswith(INTERNAL_SUFFIXES)


def _embedded(address: IPAddress) -> list[IPAddress]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64), which are
    where it really leads; else the address itself."""
    found: list[IPAddress] = []
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
        if address in _NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found or [address]


def _kind(address: IPAddress) -> str:
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address in ipaddress.IPv4Network("100.64.0.0/10"):
        return "a carrier-grade NAT address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private-network address"
    return "not a public address"


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Returns the addresses a host name resolves to (an IP literal resolves to itself)."""
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UnresolvableHost(f"cannot resolve destination host {host!r}: {error}") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableHost(f"destination host {host!r} has no address")
    return addresses


async def resolve_allowed(policy: DestinationPolicy, host: str, port: int) -> IPAddress:
    """Resolves a host and returns its first address, if every address it has is allowed.

    All of them must pass: a name that answers with one public and one private address would
    otherwise reach the private one on a later lookup.
    """
    addresses = await resolve(host, port)
    for address in addresses:
        policy.check_address(host, address)
    return addresses[0]


def policy_from_settings(settings: Settings) -> DestinationPolicy:
    """The service's destination policy: its allowed networks, its root, its own database."""
    return DestinationPolicy.of(
        settings.destination_root,
        settings.destination_allowed_networks,
        protected_paths=sqlite_paths(settings.database_url),
    )
