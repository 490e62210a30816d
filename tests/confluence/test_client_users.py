"""``ConfluenceClient.user_names``: display names for mention ids, against the emulator.

Cloud looks account ids up in bulk batches, Data Center looks keys and usernames up one by one;
unknown (or removed) users are absent, a site that refuses user lookups yields nothing (logged
once, and not asked again), rate limits are retried, and real failures raise.
"""

from __future__ import annotations

import logging

import pytest

from confluence_rag.confluence.client import ConfluenceClient, SiteAuth
from confluence_rag.confluence.parse import parse_user_name
from confluence_rag.confluence.users import BULK_BATCH
from confluence_rag.emulator import DEMO_EMAIL, EmulatorServer, FaultRule
from confluence_rag.emulator import routes_read as emulator_routes
from confluence_rag.emulator.records import User
from confluence_rag.errors import AuthenticationFailed, ClientClosed, RetryBudgetExhausted
from confluence_rag.settings import Settings
from tests.confluence.conftest import RecordedSleep, auth_for, run, served
from tests.plugins.emulator import EmulatorFactory


def authors(server: EmulatorServer) -> list[User]:
    return [u for u in server.state.users.values() if u.display_name not in ("Demo User",)]


async def lookup(
    server: EmulatorServer,
    settings: Settings,
    ids: list[str],
    *,
    usernames: list[str] | None = None,
    auth: SiteAuth | None = None,
    sleep: RecordedSleep | None = None,
) -> dict[str, str]:
    async with ConfluenceClient(
        server.site_url, auth or auth_for(server), settings=settings, sleep=sleep
    ) as client:
        return await client.user_names(ids, usernames=usernames or [])


def test_cloud_names_come_in_bulk_batches(
    cloud_emulator: EmulatorServer, settings: Settings
) -> None:
    people = authors(cloud_emulator)
    unknown = [f"5unknown{n:05d}" for n in range(BULK_BATCH + 20)]
    ids = [people[0].account_id, *unknown, *(p.account_id for p in people[1:])]
    names = run(lookup(cloud_emulator, settings, [*ids, people[0].account_id, "  ", ""]))
    assert names == {p.account_id: p.display_name for p in people}
    # 2 batches for 79 distinct ids; never one request per user
    assert served(cloud_emulator, "/rest/api/user/bulk", 2) == 2
    assert cloud_emulator.state.request_count("/rest/api/user") == 2


def test_cloud_asks_again_for_ids_a_capped_server_never_looked_at(
    cloud_emulator: EmulatorServer, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emulator_routes, "BULK_USERS_MAX", 3)  # a server with a smaller cap
    people = authors(cloud_emulator)
    assert len(people) >= 7
    names = run(lookup(cloud_emulator, settings, [p.account_id for p in people]))
    assert names == {p.account_id: p.display_name for p in people}
    expected = -(-len(people) // 3)
    assert served(cloud_emulator, "/rest/api/user/bulk", expected) == expected


def test_datacenter_names_by_key_and_username(
    dc_emulator: EmulatorServer, settings: Settings
) -> None:
    people = authors(dc_emulator)
    keys = [p.user_key for p in people[:5]] + ["f" * 32]
    usernames = [p.username for p in people[5:]] + ["nobody"]
    names = run(lookup(dc_emulator, settings, keys, usernames=usernames))
    expected = {p.user_key: p.display_name for p in people[:5]}
    expected |= {p.username: p.display_name for p in people[5:]}
    assert names == expected
    assert served(dc_emulator, "/rest/api/user", len(keys) + len(usernames)) == len(keys) + len(
        usernames
    )


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_removed_users_are_absent_not_errors(
    emulator_factory: EmulatorFactory, settings: Settings, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=1, extra_spaces={})
    kept, gone = authors(server)[:2]
    del server.state.users[gone.account_id]  # a deleted account: the site no longer knows it
    ids = (
        [kept.account_id, gone.account_id] if flavour == "cloud" else [kept.user_key, gone.user_key]
    )
    names = run(lookup(server, settings, ids))
    assert names == {ids[0]: kept.display_name}
    assert run(lookup(server, settings, [])) == {}


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_a_site_that_hides_its_people_gives_no_names_logged_once(
    emulator_factory: EmulatorFactory,
    settings: Settings,
    flavour: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = emulator_factory(flavour, pages=1, extra_spaces={}, user_lookup=False)
    people = authors(server)
    if flavour == "cloud":
        first, second = [p.account_id for p in people[:4]], [p.account_id for p in people[4:]]
    else:
        first, second = [p.user_key for p in people[:4]], [p.user_key for p in people[4:]]
    caplog.set_level(logging.WARNING, logger="confluence_rag.confluence")

    async def scenario() -> tuple[dict[str, str], dict[str, str], int]:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=settings) as client:
            assert not client.user_lookup_denied
            denied = await client.user_names(first)
            assert client.user_lookup_denied
            asked = server.state.request_count("/rest/api/user")
            again = await client.user_names(second)  # remembered: no more requests
            return denied, again, asked

    denied, again, asked = run(scenario())
    assert denied == {} and again == {}
    assert 1 <= asked <= len(first)
    assert server.state.request_count("/rest/api/user") == asked
    warnings = [r for r in caplog.records if "look users up (403)" in r.getMessage()]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "mentions keep their user ids" in message
    assert ("demo@example.com" if flavour == "cloud" else "a personal access token") in message


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_rate_limits_on_user_lookups_are_retried(
    emulator_factory: EmulatorFactory, settings: Settings, flavour: str
) -> None:
    faults = [FaultRule(kind="429", path="/rest/api/user", times=2, retry_after=3)]
    server = emulator_factory(flavour, pages=1, extra_spaces={}, faults=faults)
    someone = authors(server)[0]
    ident = someone.account_id if flavour == "cloud" else someone.user_key
    sleep = RecordedSleep()
    assert run(lookup(server, settings, [ident], sleep=sleep)) == {ident: someone.display_name}
    assert len(sleep.calls) == 2 and all(s >= 3.0 for s in sleep.calls)  # Retry-After honoured


def test_persistent_server_errors_raise(
    emulator_factory: EmulatorFactory, settings: Settings
) -> None:
    faults = [FaultRule(kind="500", path="/rest/api/user")]
    server = emulator_factory("datacenter", pages=1, extra_spaces={}, faults=faults)
    keys = [p.user_key for p in authors(server)]
    with pytest.raises(RetryBudgetExhausted):
        run(lookup(server, settings, keys, sleep=RecordedSleep()))


def test_rejected_credentials_raise(cloud_emulator: EmulatorServer, settings: Settings) -> None:
    someone = authors(cloud_emulator)[0]
    with pytest.raises(AuthenticationFailed):
        run(
            lookup(
                cloud_emulator,
                settings,
                [someone.account_id],
                auth=SiteAuth.cloud(DEMO_EMAIL, "not-the-token"),
            )
        )


@pytest.mark.parametrize(
    ("item", "name"),
    [
        # Cloud with the email hidden by the user's privacy settings
        ({"type": "known", "accountId": "5a", "accountType": "atlassian",
          "publicName": "ada", "displayName": "Ada  Lovelace"}, "Ada Lovelace"),
        # displayName is nullable; publicName is always filled
        ({"type": "known", "accountId": "5a", "displayName": None, "publicName": "ada"}, "ada"),
        # Data Center
        ({"type": "known", "username": "jsmith", "userKey": "8a80", "displayName": "J. Smith"},
         "J. Smith"),
        # a username is an id, not a name
        ({"type": "known", "username": "jsmith", "displayName": ""}, None),
        ({"type": "anonymous", "displayName": "Anonymous"}, None),
        ({}, None),
    ],
)  # fmt: skip
def test_user_name_from_payload(item: dict[str, object], name: str | None) -> None:
    assert parse_user_name(item) == name


def test_a_lookup_after_the_client_closed_is_a_named_error_not_a_crash(
    cloud_emulator: EmulatorServer, settings: Settings
) -> None:
    # A converter thread can still ask for names as its job ends and the client closes: that is
    # a ConfluenceError the caller already handles (mentions keep their ids), not a RuntimeError
    # that reaches the log as a traceback.
    async def late_lookup() -> None:
        client = ConfluenceClient(
            cloud_emulator.site_url, auth_for(cloud_emulator), settings=settings
        )
        await client.aclose()
        await client.user_names([authors(cloud_emulator)[0].account_id])

    with pytest.raises(ClientClosed, match="closed"):
        run(late_lookup())
    assert cloud_emulator.state.request_count("/rest/api/user") == 0
