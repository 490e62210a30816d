"""Outbound safety: where the server may send a request on a user's behalf (SSRF guard).

Users type a Confluence site URL into the API, the web form and the CLI, and the server then
fetches it with stored credentials. Without a guard, that URL (or a redirect, or a ``_links.next``
the site returns) could point the server at a cloud metadata service or an internal host. The
rules, enforced on every request the Confluence client sends:

1. Only ``http`` and ``https``.
2. The *address actually connected* is checked, not the host name: the guarded network backend
   resolves the name itself, drops every refused address, and connects to the remaining IP
   literals (TLS still verifies the certificate for the host name). A DNS answer that changes
   between a check and the connect (DNS rebinding) cannot slip through, because the address we
   check is the address we dial; the peer address of the open socket is checked once more.
3. Always refused: link-local (``169.254.0.0/16``, ``fe80::/10``), cloud metadata
   (``169.254.169.254``, ``fd00:ec2::254``, ``100.100.100.200``), multicast, broadcast and
   reserved ranges, including IPv4 written inside IPv6 (``::ffff:169.254.169.254``, NAT64).
4. Loopback and private ranges (``127.0.0.0/8``, ``10/8``, ``172.16/12``, ``192.168/16``,
   ``100.64/10``, ``fc00::/7``, ...) are allowed by default, because a laptop install, the
   emulator and the demo run on 127.0.0.1 and most Data Center wikis live on private networks.
   ``CONFLUENCE_RAG_BLOCK_PRIVATE_NETWORKS=true`` refuses them too (hosted deployments).
5. ``CONFLUENCE_RAG_ALLOWED_SITES`` (``*.atlassian.net,wiki.corp.example``), when set, is an
   allowlist of host patterns: any other host is refused before a connection is made.
6. Every request of a session stays on the site's own origin (scheme, host, port; an upgrade
   from http to https on the same host is allowed): redirects (httpx sends each hop through the
   transport, so each is checked) and server-supplied links that leave it are refused, which also
   keeps the credentials' ``Authorization`` header from going anywhere else.

Through an HTTP(S) proxy from the environment, the proxy connects, not us: rules 1, 3-6 still
apply to the URL (IP literals included) and resolving names is the proxy's job.

Refusals raise :class:`OutboundRefused` (a subclass of ``InvalidSiteURL``: 400 in the API, shown
next to the URL field in the web form, exit code 1 in the CLI).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

from confluence_rag.errors import OutboundRefused
from confluence_rag.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# Refused whatever the settings: nothing legitimate serves Confluence there, and these are where
# the credentials of the machine itself live (cloud instance metadata).
ALWAYS_REFUSED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "169.254.0.0/16",  # IPv4 link-local: AWS/GCP/Azure/OCI metadata 169.254.169.254, ECS
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS instance metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "224.0.0.0/4",  # multicast
        "ff00::/8",  # IPv6 multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
    )
)
# Refused only with block_private_networks: where laptops, emulators and intranet wikis live.
PRIVATE = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this host": connecting to 0.0.0.0 reaches loopback on Linux
        "127.0.0.0/8",
        "::1/128",
        "::/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT, also used inside clouds
        "198.18.0.0/15",  # benchmarking networks
        "192.0.0.0/24",  # IETF protocol assignments
        "fc00::/7",  # IPv6 unique local
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
DEFAULT_PORTS = {"http": 80, "https": 443}
FALLBACK_SECONDS = 5.0  # connect time allowed to an address before the next one is tried


def unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address hidden in an IPv6 one (mapped ``::ffff:a.b.c.d`` or NAT64), if any."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def parse_address(text: str) -> IPAddress | None:
    """An IP literal (brackets and IPv6 zone ids allowed), or None for a host name."""
    candidate = text.strip().strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


def site_matches(host: str, patterns: Iterable[str]) -> bool:
    """Whether ``host`` matches one of the allowlist ``patterns`` (``*.atlassian.net`` matches
    ``acme.atlassian.net`` but not ``atlassian.net`` itself, nor ``evilatlassian.net``)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    return any(
        fnmatch.fnmatchcase(name, pattern.strip().rstrip(".").lower())
        for pattern in patterns
        if pattern.strip()
    )


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """What may be fetched: ``allowed_sites`` patterns (empty: any host) and whether loopback and
    private addresses are refused too."""

    allowed_sites: tuple[str, ...] = ()
    block_private: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        return cls(
            allowed_sites=tuple(p for p in settings.allowed_sites if p.strip()),
            block_private=settings.block_private_networks,
        )

    def address_refusal(self, address: IPAddress) -> str | None:
        """Why connecting to ``address`` is refused, or None when it is allowed."""
        for candidate in {address, unwrap(address)}:
            if any(candidate in net for net in ALWAYS_REFUSED if net.version == candidate.version):
                return (
                    "a link-local, cloud metadata, multicast or reserved address (always refused)"
                )
            if self.block_private and (
                candidate.is_loopback
                or candidate.is_private
                or any(candidate in net for net in PRIVATE if net.version == candidate.version)
            ):
                return (
                    "a loopback or private address (refused because "
                    "CONFLUENCE_RAG_BLOCK_PRIVATE_NETWORKS is on)"
                )
        return None

    def check_address(self, address: IPAddress, host: str) -> None:
        reason = self.address_refusal(address)
        if reason is not None:
            shown = host if parse_address(host) is not None else f"{host} ({address})"
            raise OutboundRefused(
                f"Refusing to connect to {shown}: {reason}. A Confluence site must be reachable "
                "at a normal network address.",
                details={"field": "confluence_url", "host": host, "address": str(address)},
            )

    def check_url(self, url: str | httpx.URL) -> None:
        """Refuse a URL by scheme, allowlist, or an IP literal that is refused (no I/O)."""
        parsed = httpx.URL(str(url)) if not isinstance(url, httpx.URL) else url
        if parsed.scheme not in DEFAULT_PORTS:
            raise OutboundRefused(
                f"Refusing a {parsed.scheme or 'scheme-less'} URL: only http and https are "
                "fetched.",
                details={"field": "confluence_url", "scheme": parsed.scheme},
            )
        host = parsed.host
        if not host:
            raise OutboundRefused("Refusing a URL without a host.")
        if self.allowed_sites and not site_matches(host, self.allowed_sites):
            raise OutboundRefused(
                f"{host} is not in CONFLUENCE_RAG_ALLOWED_SITES "
                f"({', '.join(self.allowed_sites)}): this server only fetches from those sites.",
                details={"field": "confluence_url", "host": host},
            )
        literal = parse_address(host)
        if literal is not None:
            self.check_address(literal, host)


def origin_of(url: str | httpx.URL) -> tuple[str, str, int]:
    parsed = httpx.URL(str(url)) if not isinstance(url, httpx.URL) else url
    scheme = parsed.scheme
    return scheme, parsed.host.lower(), parsed.port or DEFAULT_PORTS.get(scheme, 0)


def same_site(url: str | httpx.URL, site_origin: tuple[str, str, int]) -> bool:
    """Same scheme, host and port; or http -> https on the same host with default ports."""
    target = origin_of(url)
    if target == site_origin:
        return True
    scheme, host, port = site_origin
    return (scheme, port) == ("http", 80) and target == ("https", host, 443)


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (in its order)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that resolves names itself and dials only allowed addresses."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver: Resolver = resolver or system_resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = parse_address(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            addresses = await self._resolve(host, port, timeout)
        allowed = [a for a in addresses if self.policy.address_refusal(a) is None]
        if not allowed:
            # Every address is refused: name the first one (the one a plain client would dial).
            self.policy.check_address(addresses[0], host)
        last_error: Exception | None = None
        for n, address in enumerate(allowed):
            # Addresses are tried one after another (not raced as anyio's happy eyeballs would
            # with a name): an unroutable first address (say, IPv6 on a v4-only network) may
            # only use part of the timeout, so the next one still gets its turn.
            last = n == len(allowed) - 1
            attempt = timeout if last or timeout is None else min(timeout, FALLBACK_SECONDS)
            try:
                stream = await self.inner.connect_tcp(
                    str(address), port, attempt, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
                continue
            peer = stream.get_extra_info("server_addr")
            connected = parse_address(str(peer[0])) if peer else None
            if connected is None or self.policy.address_refusal(connected) is not None:
                await stream.aclose()
                self.policy.check_address(connected or address, host)
            return stream
        assert last_error is not None
        raise last_error

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        try:
            with anyio.fail_after(timeout):
                answers = await self.resolver(host, port)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from error
        except OSError as error:  # socket.gaierror: the name does not resolve
            raise httpcore.ConnectError(str(error)) from error
        addresses = [a for a in (parse_address(answer) for answer in answers) if a is not None]
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("Refusing to connect to a Unix socket.")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedHTTPTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, whose connection pool dials through :class:`GuardedBackend`.

    httpx does not take a network backend as an argument, so the pool it built is replaced by an
    equal one that has ours (``_pool`` is where every httpx 0.2x transport keeps it; the SSRF
    tests fail loudly if that ever changes).
    """

    def __init__(self, policy: OutboundPolicy, *, resolver: Resolver | None = None) -> None:
        # One SSL context (loading the CA bundle takes tens of ms), shared with the pool below.
        context = httpx.create_ssl_context()
        super().__init__(verify=context)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy, resolver=resolver),
        )


class GuardedTransport(httpx.AsyncBaseTransport):
    """Checks each request (each redirect hop included) before ``inner`` sends it."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        policy: OutboundPolicy,
        site_url: str | None = None,
    ) -> None:
        self.inner = inner
        self.policy = policy
        self.site_origin = origin_of(site_url) if site_url else None
        self.site_url = site_url

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.policy.check_url(request.url)
        if self.site_origin is not None and not same_site(request.url, self.site_origin):
            scheme, host, port = origin_of(request.url)
            raise OutboundRefused(
                f"Refusing to follow {self.site_url} to {scheme}://{host}:{port}: requests "
                "(redirects and links the server returns) must stay on the site that was "
                "added.",
                details={"field": "confluence_url", "host": host},
            )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def environment_proxy(url: str) -> str | None:
    """The proxy the environment (``HTTPS_PROXY`` ... ``NO_PROXY``) sets for ``url``, if any."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def guarded_transport(
    site_url: str,
    settings: Settings,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    resolver: Resolver | None = None,
) -> GuardedTransport:
    """The transport a Confluence session uses for ``site_url``.

    ``transport`` (tests, custom stacks) is wrapped as given; by default the connection is made
    by :class:`GuardedHTTPTransport`, or through the environment's proxy when one applies.
    """
    policy = OutboundPolicy.from_settings(settings)
    if transport is None:
        proxy = environment_proxy(site_url)
        if proxy is not None:
            transport = httpx.AsyncHTTPTransport(proxy=proxy)
        else:
            transport = GuardedHTTPTransport(policy, resolver=resolver)
    return GuardedTransport(transport, policy, site_url)
