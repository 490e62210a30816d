"""Before any crawl: wrong credentials, no permission, unknown space, unreachable host and a
wrong site URL are distinct errors with messages a user can act on, and no secret leaks."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from confluence_rag.confluence.client import ConfluenceClient, SiteAuth
from confluence_rag.emulator import DEMO_EMAIL, EmulatorServer
from confluence_rag.errors import (
    AuthenticationFailed,
    ConfluenceError,
    ConfluenceUnreachable,
    ContentNotFound,
    InvalidInput,
    InvalidSiteURL,
    SpaceAccessDenied,
    SpaceNotFound,
    UnexpectedResponse,
)
from confluence_rag.settings import Settings
from tests.confluence.conftest import RecordedSleep, auth_for, run

Factory = Callable[..., EmulatorServer]
FLAVOURS = ["cloud", "datacenter"]
WRONG_TOKEN = "wrong-token-Zq9x"


def wrong_auth(flavour: str) -> SiteAuth:
    if flavour == "cloud":
        return SiteAuth.cloud(DEMO_EMAIL, WRONG_TOKEN)
    return SiteAuth.datacenter(WRONG_TOKEN)


def check(site_url: str, auth: SiteAuth, settings: Settings, key: str = "DEMO") -> ConfluenceError:
    """Run check_access and return the ConfluenceError it raised."""

    async def attempt() -> ConfluenceError:
        async with ConfluenceClient(site_url, auth, settings=settings, sleep=RecordedSleep()) as c:
            try:
                await c.check_access(key)
            except ConfluenceError as error:
                return error
        raise AssertionError("check_access succeeded")

    return run(attempt())


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_access_granted_returns_the_space(
    emulator_factory: Factory, settings: Settings, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=5)

    async def ok() -> object:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=settings) as c:
            return await c.check_access("DEMO")

    space = run(ok())
    assert space.key == "DEMO"  # type: ignore[attr-defined]
    assert space.web_url.startswith(server.api_base)  # type: ignore[attr-defined]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_wrong_credentials(emulator_factory: Factory, settings: Settings, flavour: str) -> None:
    server = emulator_factory(flavour, pages=5)
    auth = wrong_auth(flavour)
    error = check(server.site_url, auth, settings)
    assert type(error) is AuthenticationFailed
    assert error.message.startswith("Confluence rejected the credentials for ")
    assert server.api_base in error.message
    if flavour == "cloud":
        assert DEMO_EMAIL in error.message and "API token (Cloud)" in error.message
    else:
        assert "personal access token" in error.message
    # no retries on a 401: one request, and the secret is nowhere
    assert server.state.request_count("/rest/api/space") == 1
    for secret in auth.secrets():
        assert secret not in str(error) and secret not in repr(error.details)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_no_permission_on_the_space(
    emulator_factory: Factory, settings: Settings, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=5)
    error = check(server.site_url, auth_for(server, restricted=True), settings)
    assert type(error) is SpaceAccessDenied
    assert "may not read space DEMO" in error.message and "permission" in error.message
    assert error.details["space_key"] == "DEMO"
    assert server.state.request_count("/rest/api/space") == 1  # a real 403 is not retried


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_unknown_space(emulator_factory: Factory, settings: Settings, flavour: str) -> None:
    server = emulator_factory(flavour, pages=5)
    error = check(server.site_url, auth_for(server), settings, key="NOPE")
    assert type(error) is SpaceNotFound
    assert "no space with key NOPE" in error.message


def test_wrong_context_path_is_not_mistaken_for_a_missing_space(
    emulator_factory: Factory, settings: Settings
) -> None:
    server = emulator_factory("datacenter", pages=5)
    error = check(server.site_url + "/confluence", auth_for(server), settings)
    assert type(error) is UnexpectedResponse
    assert "no Confluence REST API" in error.message and "context path" in error.message


def test_closed_port_is_unreachable(settings: Settings) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = check(f"http://127.0.0.1:{port}", SiteAuth.datacenter("pat"), settings)
    assert type(error) is ConfluenceUnreachable
    assert f"http://127.0.0.1:{port}" in error.message
    assert "refused" in error.message


def test_unresolvable_host_is_unreachable(settings: Settings) -> None:
    auth = SiteAuth.cloud("me@example.com", "token")
    error = check("https://confluence-rag-test.invalid", auth, settings)
    assert type(error) is ConfluenceUnreachable
    assert "https://confluence-rag-test.invalid/wiki" in error.message
    assert "resolve" in error.message or "DNS" in error.message


def test_error_types_are_distinct() -> None:
    kinds = [AuthenticationFailed, SpaceAccessDenied, SpaceNotFound, ConfluenceUnreachable]
    for kind in kinds:
        assert issubclass(kind, ConfluenceError)
        assert not any(issubclass(kind, other) for other in kinds if other is not kind)
    assert len({kind.code for kind in kinds}) == len(kinds)


def test_invalid_site_url_is_refused_up_front(settings: Settings) -> None:
    with pytest.raises(InvalidSiteURL, match="http"):
        ConfluenceClient("ftp://acme.atlassian.net", SiteAuth.datacenter("pat"), settings=settings)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_listings_raise_auth_errors_instead_of_returning_partial_results(
    emulator_factory: Factory, settings: Settings, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=5)

    async def attempt() -> None:
        async with ConfluenceClient(server.site_url, wrong_auth(flavour), settings=settings) as c:
            with pytest.raises(AuthenticationFailed):
                [page async for page in c.iter_pages("DEMO")]
            with pytest.raises(AuthenticationFailed):
                await c.iter_page_ids("DEMO")

    run(attempt())


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_missing_or_hidden_page_is_content_not_found(
    emulator_factory: Factory, settings: Settings, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=5)
    hidden = sorted(server.state.current_ids("OPS"))[0]
    server.state.set_space_permission("OPS", DEMO_EMAIL if flavour == "cloud" else "demo", False)

    async def attempt() -> None:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=settings) as c:
            for page_id in ("999999999", hidden):
                with pytest.raises(ContentNotFound, match=page_id):
                    await c.get_page(page_id)
                with pytest.raises(ContentNotFound):
                    await c.list_attachments(page_id)
            with pytest.raises(InvalidInput):
                await c.get_page("12 OR 1=1")

    run(attempt())


def test_reprs_hide_secrets(settings: Settings) -> None:
    cloud = SiteAuth.cloud("me@example.com", "tok-SECRET-1")
    dc = SiteAuth.datacenter("pat-SECRET-2")
    client = ConfluenceClient("https://acme.atlassian.net", cloud, settings=settings)
    shown = " ".join([repr(cloud), str(cloud), repr(dc), str(dc), repr(client)])
    assert "SECRET" not in shown
    assert "me@example.com" in repr(cloud)
    assert "https://acme.atlassian.net/wiki" in repr(client)
    run(client.aclose())


@pytest.mark.parametrize(
    "build",
    [
        lambda: SiteAuth.cloud("", "token"),
        lambda: SiteAuth.cloud("me@example.com", ""),
        lambda: SiteAuth.datacenter("  "),
    ],
)
def test_empty_credentials_are_refused(build: Callable[[], SiteAuth]) -> None:
    with pytest.raises(InvalidInput):
        build()


def test_a_redirected_api_is_explained(settings: Settings) -> None:
    # a real HTTP server on 127.0.0.1 standing in for a proxy that bounces API calls to a login
    class Bounce(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(302)
            self.send_header("Location", "https://sso.example.com/login?ticket=abc")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    with ThreadingHTTPServer(("127.0.0.1", 0), Bounce) as proxy:
        thread = threading.Thread(target=proxy.serve_forever, daemon=True)
        thread.start()
        try:
            error = check(
                f"http://127.0.0.1:{proxy.server_port}", SiteAuth.datacenter("p"), settings
            )
        finally:
            proxy.shutdown()
    assert type(error) is UnexpectedResponse
    assert "redirects API calls to https://sso.example.com/login" in error.message
    assert "ticket=abc" not in error.message
