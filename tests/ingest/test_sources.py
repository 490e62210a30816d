"""Adding sources against the emulator over a real socket: all-or-nothing, secrets encrypted."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from confluence_rag.emulator import (
    DEMO_API_TOKEN,
    DEMO_EMAIL,
    DEMO_PAT,
    RESTRICTED_API_TOKEN,
    RESTRICTED_EMAIL,
)
from confluence_rag.errors import (
    AuthenticationFailed,
    Conflict,
    ConfluenceError,
    InvalidInput,
    InvalidSiteURL,
    NotFound,
    SecretKeyError,
    SourceNotFound,
    SpaceAccessDenied,
    SpaceNotFound,
)
from confluence_rag.ingest.sources import NewSource
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from tests.ingest.conftest import data_files, new_source, run
from tests.plugins.emulator import EmulatorFactory

RESTRICTED = {"user_email": RESTRICTED_EMAIL, "api_token": RESTRICTED_API_TOKEN}


async def _nothing_saved(settings: Settings) -> None:
    async with build_services(settings) as services:
        assert await services.sources.list() == []
        assert await services.jobs.list(active_only=False) == []


def test_add_cloud_source_stores_encrypted_credentials(
    settings: Settings, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=5, extra_spaces={"OPS": 3})

    async def scenario() -> None:
        async with build_services(settings) as services:
            source, job = await services.sources.add(new_source(server, "ops", "DEMO"), start=False)
            assert job is None
            assert source.id == f"127.0.0.1:{server.port}:DEMO+OPS"
            assert source.space_keys == ("OPS", "DEMO")
            assert source.space_names["DEMO"] == "Demo Space"
            assert source.flavour == "cloud" and source.user_email == DEMO_EMAIL
            assert source.site_url == server.api_base
            creds = await services.sources.credentials(source.id)
            assert creds.api_token == DEMO_API_TOKEN and creds.user_email == DEMO_EMAIL
            stored = await services.store.get_credentials(source.id)
            assert DEMO_API_TOKEN.encode() not in stored
            assert [s.id for s in await services.sources.list()] == [source.id]
            # The same site + spaces (in any order) is the same source.
            with pytest.raises(Conflict) as info:
                await services.sources.add(new_source(server, "DEMO", "OPS"), start=False)
            assert info.value.details["source_id"] == source.id

    run(scenario())
    assert DEMO_API_TOKEN.encode() not in data_files(settings.data_dir)


def test_add_datacenter_source_with_a_pat(
    settings: Settings, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("datacenter", pages=5)

    async def scenario() -> None:
        async with build_services(settings) as services:
            source, _ = await services.sources.add(new_source(server), start=False)
            assert source.flavour == "datacenter" and source.auth_kind == "bearer"
            assert (await services.sources.credentials(source.id)).api_token == DEMO_PAT

    run(scenario())
    assert DEMO_PAT.encode() not in data_files(settings.data_dir)


@pytest.mark.parametrize(
    ("change", "error", "status"),
    [
        ({"api_token": "wrong-token"}, AuthenticationFailed, 401),
        ({"user_email": "nobody@example.com"}, AuthenticationFailed, 401),
        ({"space_keys": ("DEMO", "NOPE")}, SpaceNotFound, 404),
        (
            {"user_email": RESTRICTED_EMAIL, "api_token": RESTRICTED_API_TOKEN},
            SpaceAccessDenied,
            403,
        ),
        ({"confluence_url": "not a url"}, InvalidSiteURL, 400),
        ({"confluence_url": "ftp://127.0.0.1/"}, InvalidSiteURL, 400),
        ({"space_keys": ("DE-V",)}, InvalidInput, 400),
        ({"page_types": ("page", "attachment")}, InvalidInput, 400),
    ],
)
def test_bad_requests_create_nothing(
    settings: Settings,
    emulator_factory: EmulatorFactory,
    change: dict[str, object],
    error: type[Exception],
    status: int,
) -> None:
    server = emulator_factory("cloud", pages=3)
    fields: dict[str, object] = {
        "confluence_url": server.site_url,
        "flavour": "cloud",
        "user_email": DEMO_EMAIL,
        "api_token": DEMO_API_TOKEN,
        "space_keys": ("DEMO",),
        **change,
    }

    async def scenario() -> None:
        async with build_services(settings) as services:
            with pytest.raises(error) as info:
                await services.sources.add(NewSource(**fields))  # type: ignore[arg-type]
            assert info.value.status_code == status  # type: ignore[attr-defined]
            assert DEMO_API_TOKEN not in str(info.value)
            assert "wrong-token" not in str(info.value)

    run(scenario())
    run(_nothing_saved(settings))
    assert b"wrong-token" not in data_files(settings.data_dir)


def test_unreachable_site_creates_nothing(settings: Settings) -> None:
    async def scenario() -> None:
        async with build_services(settings) as services:
            new = NewSource(
                confluence_url="http://127.0.0.1:9",
                flavour="datacenter",
                api_token="pat",
                space_key="DEV",
            )
            with pytest.raises(ConfluenceError):
                await services.sources.add(new)

    run(scenario())
    run(_nothing_saved(settings))


def test_wrong_secret_key_fails_before_anything_is_saved(
    isolated_env: object, emulator_factory: EmulatorFactory, settings: Settings
) -> None:
    server = emulator_factory("cloud", pages=3)
    bad = Settings(data_dir=settings.data_dir, secret_key=SecretStr("short"))

    async def scenario() -> None:
        async with build_services(bad) as services:
            with pytest.raises(SecretKeyError, match="CONFLUENCE_RAG_SECRET_KEY"):
                await services.sources.add(new_source(server))

    run(scenario())
    assert server.state.request_count("/rest/api/space") == 0
    run(_nothing_saved(settings))


def test_credentials_need_the_key_that_encrypted_them(
    isolated_env: object, emulator_factory: EmulatorFactory, settings: Settings
) -> None:
    server = emulator_factory("cloud", pages=3)
    first = Settings(
        data_dir=settings.data_dir, secret_key=SecretStr(Fernet.generate_key().decode())
    )
    second = Settings(
        data_dir=settings.data_dir, secret_key=SecretStr(Fernet.generate_key().decode())
    )

    async def scenario() -> None:
        async with build_services(first) as services:
            source, _ = await services.sources.add(new_source(server), start=False)
        async with build_services(second) as services:
            with pytest.raises(SecretKeyError):
                await services.sources.credentials(source.id)

    run(scenario())


def test_update_and_delete(settings: Settings, emulator_factory: EmulatorFactory) -> None:
    server = emulator_factory("cloud", pages=3)

    async def scenario() -> None:
        async with build_services(settings) as services:
            source, _ = await services.sources.add(new_source(server), start=False)
            updated = await services.sources.update(source.id, sync_frequency_hours=6, paused=True)
            assert updated.sync_frequency_hours == 6 and updated.paused
            with pytest.raises(InvalidInput):
                await services.sources.update(source.id, site_url="http://evil")
            with pytest.raises(InvalidInput):
                await services.sources.update(source.id, sync_frequency_hours=-1)
            await services.sources.delete(source.id)
            with pytest.raises(SourceNotFound):
                await services.sources.get(source.id)
            with pytest.raises(NotFound):
                await services.store.get_credentials(source.id)
            with pytest.raises(SourceNotFound):
                await services.sources.delete(source.id)

    run(scenario())
