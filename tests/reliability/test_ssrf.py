"""Outbound safety (SSRF): the server fetches URLs that users type, so where it may connect is
checked on every request, at the address actually dialled.

Real parts throughout: the Confluence emulator and tiny HTTP servers on 127.0.0.1, the real
client, the real API and web form. A DNS name "resolving" to a metadata address cannot be made
with the system resolver offline (no hosts-file edits in tests), so those tests give the guarded
backend a resolver that answers with the address; everything after the answer (the check, the
connect to the IP, the TLS-free HTTP exchange) is the production path, and the same name
answered with 127.0.0.1 really reaches the emulator, which proves the resolver's answer is what
gets dialled. The system resolver is exercised with ``localhost``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from confluence_rag.confluence.client import ConfluenceClient, SiteAuth
from confluence_rag.confluence.models import Attachment
from confluence_rag.confluence.outbound import (
    GuardedHTTPTransport,
    OutboundPolicy,
    guarded_transport,
    site_matches,
    unwrap,
)
from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, DEMO_PAT, EmulatorServer
from confluence_rag.errors import ConfluenceUnreachable, InvalidSiteURL, OutboundRefused
from confluence_rag.settings import Settings
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.reliability.security_app import (
    app_settings,
    assert_error_shape,
    csrf_from,
    redirect_to,
    running_app,
    tiny_server,
)

Factory = Callable[..., EmulatorServer]
METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.170.2/v2/credentials",  # ECS task credentials
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",  # IPv4-mapped IPv6
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[fe80::1]/",
    "http://224.0.0.1/",
]


def dc_auth() -> SiteAuth:
    return SiteAuth.datacenter(DEMO_PAT)


async def check(site_url: str, settings: Settings, **client_kwargs: object) -> object:
    async with ConfluenceClient(site_url, dc_auth(), settings=settings, **client_kwargs) as c:  # type: ignore[arg-type]
        return await c.check_access("DEMO")


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


def fixed_resolver(answers: dict[str, Sequence[str]], asked: list[str]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        return answers[host]

    return resolve


# --- the policy itself ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "always", "private"),
    [
        ("169.254.169.254", True, True),
        ("fd00:ec2::254", True, True),
        ("100.100.100.200", True, True),
        ("::ffff:169.254.169.254", True, True),
        ("fe80::abcd", True, True),
        ("127.0.0.1", False, True),
        ("::1", False, True),
        ("0.0.0.0", False, True),
        ("10.1.2.3", False, True),
        ("172.20.0.5", False, True),
        ("192.168.1.10", False, True),
        ("100.64.0.1", False, True),
        ("fd12:3456::1", False, True),
        ("::ffff:10.0.0.1", False, True),
        ("93.184.216.34", False, False),
        ("2606:4700::1111", False, False),
    ],
)
def test_address_policy(address: str, always: bool, private: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert (OutboundPolicy().address_refusal(ip) is not None) is always
    assert (OutboundPolicy(block_private=True).address_refusal(ip) is not None) is private


def test_ipv4_hidden_in_ipv6_is_unwrapped() -> None:
    assert str(unwrap(ipaddress.ip_address("::ffff:169.254.169.254"))) == "169.254.169.254"
    assert str(unwrap(ipaddress.ip_address("64:ff9b::a9fe:a9fe"))) == "169.254.169.254"
    assert str(unwrap(ipaddress.ip_address("2606:4700::1111"))) == "2606:4700::1111"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("acme.atlassian.net", True),
        ("ACME.Atlassian.NET", True),
        ("a.b.atlassian.net", True),
        ("atlassian.net", False),
        ("evilatlassian.net", False),
        ("acme.atlassian.net.evil.com", False),
        ("wiki.corp.example", True),
        ("wiki.corp.example.", True),
        ("wiki2.corp.example", False),
    ],
)
def test_allowlist_patterns(host: str, expected: bool) -> None:
    assert site_matches(host, ["*.atlassian.net", "wiki.corp.example"]) is expected


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://wiki.example.com/"]
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    with pytest.raises(OutboundRefused, match="only http and https"):
        OutboundPolicy().check_url(url)


def test_allowed_sites_is_read_from_a_comma_separated_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONFLUENCE_RAG_ALLOWED_SITES", "*.atlassian.net, wiki.corp.example")
    monkeypatch.setenv("CONFLUENCE_RAG_BLOCK_PRIVATE_NETWORKS", "true")
    policy = OutboundPolicy.from_settings(Settings())
    assert policy == OutboundPolicy(("*.atlassian.net", "wiki.corp.example"), True)


# --- the client: IP literals, names, redirects, links -----------------------------------------
@pytest.mark.parametrize("url", METADATA_URLS)
def test_metadata_and_link_local_literals_are_refused(settings: Settings, url: str) -> None:
    with pytest.raises(
        OutboundRefused, match="cloud metadata, multicast or reserved address"
    ) as caught:
        asyncio.run(check(url, settings))
    assert isinstance(caught.value, InvalidSiteURL)  # shown next to the URL field


def test_a_name_resolving_to_metadata_is_refused_at_connect_time(
    emulator_factory: Factory, settings: Settings
) -> None:
    server = emulator_factory("datacenter", pages=3)
    port = server.site_url.rsplit(":", 1)[1]
    asked: list[str] = []
    evil = fixed_resolver({"wiki.example.test": ["169.254.169.254"]}, asked)
    with pytest.raises(OutboundRefused, match=r"wiki\.example\.test \(169\.254\.169\.254\)"):
        asyncio.run(
            check(
                f"http://wiki.example.test:{port}",
                settings,
                transport=GuardedHTTPTransport(OutboundPolicy(), resolver=evil),
            )
        )
    assert asked == ["wiki.example.test"]  # the name passed every URL check; the address did not

    # The same name answered with the emulator's address is dialled and served: what the
    # resolver answers is what gets connected, and what gets checked.
    good = fixed_resolver({"wiki.example.test": ["169.254.169.254", "127.0.0.1"]}, asked)
    space = asyncio.run(
        check(
            f"http://wiki.example.test:{port}",
            settings,
            transport=GuardedHTTPTransport(OutboundPolicy(), resolver=good),
        )
    )
    assert getattr(space, "key", None) == "DEMO"


def test_an_address_that_refuses_falls_back_to_the_next_one(
    emulator_factory: Factory, settings: Settings
) -> None:
    server = emulator_factory("datacenter", pages=3)
    port = server.site_url.rsplit(":", 1)[1]
    asked: list[str] = []
    # nothing listens on 127.0.0.2 (the emulator is bound to 127.0.0.1): refused, next address
    answers = fixed_resolver({"wiki.example.test": ["127.0.0.2", "127.0.0.1"]}, asked)
    space = asyncio.run(
        check(
            f"http://wiki.example.test:{port}",
            settings,
            transport=GuardedHTTPTransport(OutboundPolicy(), resolver=answers),
        )
    )
    assert getattr(space, "key", None) == "DEMO"


def test_loopback_is_allowed_by_default_and_refused_when_private_networks_are_blocked(
    emulator_factory: Factory, settings: Settings
) -> None:
    server = emulator_factory("datacenter", pages=3)
    port = server.site_url.rsplit(":", 1)[1]
    # the system resolver answers for "localhost"; the check sees the address it returns
    space = asyncio.run(check(f"http://localhost:{port}", settings))
    assert getattr(space, "key", None) == "DEMO"
    blocked = settings.model_copy(update={"block_private_networks": True})
    with pytest.raises(OutboundRefused, match=r"localhost \((127\.0\.0\.1|::1)\).*BLOCK_PRIVATE"):
        asyncio.run(check(f"http://localhost:{port}", blocked))
    assert server.state.request_count("/rest/api/space") == 1  # the blocked one never arrived


def test_allowlist_hit_and_miss(emulator_factory: Factory, settings: Settings) -> None:
    server = emulator_factory("datacenter", pages=3)
    hit = settings.model_copy(update={"allowed_sites": ["127.0.0.1", "*.atlassian.net"]})
    assert getattr(asyncio.run(check(server.site_url, hit)), "key", None) == "DEMO"
    miss = settings.model_copy(update={"allowed_sites": ["*.atlassian.net"]})
    with pytest.raises(OutboundRefused, match="not in CONFLUENCE_RAG_ALLOWED_SITES"):
        asyncio.run(check(server.site_url, miss))
    assert server.state.request_count("/rest/api/space") == 1


def download(site_url: str, settings: Settings, path: str) -> bytes:
    attachment = Attachment(
        id="att1",
        page_id="1",
        title="a.txt",
        media_type="text/plain",
        file_size=None,
        download_path=path,
    )

    async def fetch() -> bytes:
        async with ConfluenceClient(site_url, dc_auth(), settings=settings) as client:
            return b"".join([chunk async for chunk in client.download_attachment(attachment)])

    return asyncio.run(fetch())


def test_a_redirect_to_metadata_is_refused(settings: Settings) -> None:
    target = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    with tiny_server(redirect_to(target)) as (url, seen):
        with pytest.raises(OutboundRefused, match="cloud metadata, multicast or reserved address"):
            download(url, settings, "/download/attachments/1/a.txt")
    assert len(seen) == 1  # the site was asked once; the redirect was not followed


def test_a_redirect_off_the_site_is_refused_and_credentials_stay_home(settings: Settings) -> None:
    def ok(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Length", "2")
        request.end_headers()
        request.wfile.write(b"ok")

    with (
        tiny_server(ok) as (other, other_seen),
        tiny_server(redirect_to(other + "/x")) as (
            url,
            seen,
        ),
    ):
        with pytest.raises(OutboundRefused, match="must stay on the site"):
            download(url, settings, "/download/attachments/1/a.txt")
    assert len(seen) == 1 and seen[0]["authorization"] == f"Bearer {DEMO_PAT}"
    assert other_seen == []  # nothing, let alone the Authorization header, went elsewhere


def test_a_redirect_within_the_site_is_followed(settings: Settings) -> None:
    def handle(request: BaseHTTPRequestHandler) -> None:
        if request.path.startswith("/moved"):
            request.send_response(200)
            request.send_header("Content-Length", "5")
            request.end_headers()
            request.wfile.write(b"bytes")
        else:
            redirect_to("/moved/a.txt")(request)

    with tiny_server(handle) as (url, seen):
        assert download(url, settings, "/download/attachments/1/a.txt") == b"bytes"
    assert [entry["path"] for entry in seen] == ["/download/attachments/1/a.txt", "/moved/a.txt"]


def test_a_listing_link_that_leaves_the_site_is_refused(settings: Settings) -> None:
    with tiny_server(lambda r: None) as (other, other_seen):

        def listing(request: BaseHTTPRequestHandler) -> None:
            body = (
                '{"results": [{"id": "1", "type": "page", "status": "current", "title": "A",'
                ' "version": {"number": 1}}], "start": 0, "limit": 1, "size": 1,'
                f' "_links": {{"base": "{other}", "next": "/rest/api/content/search?cursor=x"}}}}'
            ).encode()
            request.send_response(200)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)

        async def walk() -> None:
            async with ConfluenceClient(url, dc_auth(), settings=settings) as client:
                [page async for page in client.iter_pages("DEMO", include_body=False)]

        with tiny_server(listing) as (url, _seen):
            with pytest.raises(OutboundRefused, match="must stay on the site"):
                asyncio.run(walk())
    assert other_seen == []


def test_a_name_that_does_not_resolve_is_still_a_clear_unreachable_error(
    settings: Settings,
) -> None:
    asked: list[str] = []

    async def nxdomain(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        raise OSError(-2, "Name or service not known")

    transport = guarded_transport("http://nowhere.example.test", settings, None, resolver=nxdomain)
    with pytest.raises(ConfluenceUnreachable, match="does not resolve"):
        asyncio.run(
            check("http://nowhere.example.test", settings, transport=transport, sleep=no_wait)
        )
    assert asked and set(asked) == {"nowhere.example.test"}


# --- the surfaces: API error shape and the web form -------------------------------------------
@pytest.fixture
def embeddings() -> Iterator[FakeEmbeddingServer]:
    with FakeEmbeddingServer(dimension=32) as server:
        yield server


def test_the_api_refuses_a_metadata_site_with_the_standard_error(
    isolated_env: Path, embeddings: FakeEmbeddingServer, sqlite_template: Path
) -> None:
    settings = app_settings(isolated_env, embeddings, sqlite_template)
    with running_app(settings) as client:
        response = client.post(
            "/api/confluence/sources",
            json={
                "confluence_url": "http://169.254.169.254",
                "user_email": DEMO_EMAIL,
                "api_token": DEMO_API_TOKEN,
                "space_key": "DEMO",
                "flavour": "cloud",
            },
        )
        assert_error_shape(response, 400, "outbound_refused")
        assert "169.254.169.254" in response.json()["error"]["message"]
        assert client.get("/api/confluence/sources").json()["count"] == 0  # nothing saved


def test_the_web_form_shows_the_refusal_next_to_the_url(
    isolated_env: Path, embeddings: FakeEmbeddingServer, sqlite_template: Path
) -> None:
    settings = app_settings(isolated_env, embeddings, sqlite_template)
    with running_app(settings) as client:
        form = client.get("/sources/new")
        response = client.post(
            "/sources/new",
            data={
                "csrf_token": csrf_from(form.text),
                "confluence_url": "http://[fd00:ec2::254]",
                "flavour": "datacenter",
                "pat": DEMO_PAT,
                "space_keys": "DEMO",
                "page_types": "page",
                "sync_frequency_hours": "24",
            },
        )
    assert response.status_code == 400
    html = response.text
    url_field = html[html.index('id="confluence_url"') : html.index('name="flavour"')]
    assert "cloud metadata, multicast or reserved address" in url_field


def test_the_api_refuses_a_site_outside_the_allowlist(
    isolated_env: Path, embeddings: FakeEmbeddingServer, sqlite_template: Path
) -> None:
    settings = app_settings(
        isolated_env, embeddings, sqlite_template, allowed_sites=["*.atlassian.net"]
    )
    with running_app(settings) as client:
        response = client.post(
            "/api/confluence/sources",
            json={
                "confluence_url": "https://wiki.corp.example",
                "api_token": DEMO_PAT,
                "space_key": "DEMO",
                "flavour": "datacenter",
            },
        )
    assert_error_shape(response, 400, "outbound_refused")
    assert "not in CONFLUENCE_RAG_ALLOWED_SITES" in response.json()["error"]["message"]


# --- TLS: the IP is dialled, the certificate is still verified for the host name ---------------
def _certificates(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A test CA (PEM) and a server certificate for ``name`` signed by it, with its key."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "confluence-rag test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_pem, cert_pem, key_pem


@pytest.fixture
def tls_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 with a certificate for wiki.example.test (trusted through
    SSL_CERT_FILE, which httpx honours), answering GET /rest/api/space/DEMO; yields its port."""
    import json
    import ssl
    import threading
    from http.server import ThreadingHTTPServer

    ca_pem, cert_pem, key_pem = _certificates(tmp_path, "wiki.example.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_pem))

    class Space(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = json.dumps({"id": 7, "key": "DEMO", "name": "Demo"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_pem, key_pem)
    with ThreadingHTTPServer(("127.0.0.1", 0), Space) as httpd:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield httpd.server_port
        finally:
            httpd.shutdown()


def test_tls_is_verified_for_the_name_while_the_checked_address_is_dialled(
    tls_site: int, settings: Settings
) -> None:
    asked: list[str] = []
    answers = fixed_resolver(
        {"wiki.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]}, asked
    )

    def via(name: str) -> object:
        return asyncio.run(
            check(
                f"https://{name}:{tls_site}",
                settings,
                transport=GuardedHTTPTransport(OutboundPolicy(), resolver=answers),
                sleep=no_wait,  # the TLS failure is retried like any connect error
            )
        )

    assert getattr(via("wiki.example.test"), "key", None) == "DEMO"
    # same address, another name: the certificate does not match, so TLS refuses
    with pytest.raises(ConfluenceUnreachable, match="TLS"):
        via("other.example.test")
    assert set(asked) == {"wiki.example.test", "other.example.test"}
