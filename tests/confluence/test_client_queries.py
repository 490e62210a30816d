"""Queries the client sends: injection attempts rejected or quoted, and incremental windows
that find an edit made late in the evening of the site's time zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from confluence_rag.confluence.client import ConfluenceClient
from confluence_rag.emulator import EmulatorServer
from confluence_rag.errors import InvalidInput
from confluence_rag.settings import Settings
from tests.confluence.conftest import auth_for, run

Factory = Callable[..., EmulatorServer]
INJECTION = 'A" OR space = "B'


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_injected_space_key_is_rejected_before_any_request(
    emulator_factory: Factory, settings: Settings, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=5)

    async def attempt() -> None:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=settings) as c:
            with pytest.raises(InvalidInput, match="not a Confluence space key"):
                await c.check_access(INJECTION)
            with pytest.raises(InvalidInput, match="not a Confluence space key"):
                [page async for page in c.iter_pages(INJECTION)]
            with pytest.raises(InvalidInput):
                await c.iter_page_ids('DEMO" OR space = "OPS')

    run(attempt())
    assert server.state.request_count("/rest/api") == 0


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_labels_with_quotes_are_quoted_not_executed(
    emulator_factory: Factory, settings: Settings, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=20)
    target = sorted(server.state.current_ids("DEMO"))[3]
    server.state.add_label(target, 'say-"hi"')
    ops_pages = server.state.current_ids("OPS")
    assert ops_pages  # the space an injection would try to reach

    async def query(labels: list[str]) -> list[str]:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=settings) as c:
            return [page.id async for page in c.iter_pages("DEMO", labels=labels)]

    # a label containing quotes is one literal value: it finds exactly the labelled page
    assert run(query(['say-"hi"'])) == [target]
    # a label trying to widen the query matches no label, and nothing from OPS comes back
    assert run(query(['x" OR space = "OPS'])) == []
    searches = [r for r in server.state.requests if "/content/search" in r.path]
    assert searches and all(r.status == 200 for r in searches)


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_never_duplicates_expand_when_following_next_links(
    emulator_factory: Factory, settings: Settings, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=120)

    async def walk() -> int:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=settings) as c:
            return len([page async for page in c.iter_pages("DEMO")])

    assert run(walk()) == len(server.state.current_ids("DEMO"))
    searches = [r.query for r in server.state.requests if "/content/search" in r.path]
    assert len(searches) > 2
    assert all(query.count("expand=") == 1 for query in searches)
    assert all(query.count("cql=") == 1 for query in searches)


SITE_ZONE = "America/Los_Angeles"
# 23:30 on 15 January in Los Angeles (PST, UTC-8) is 07:30 on the 16th in UTC
LATE_EDIT_LOCAL = datetime(2030, 1, 15, 23, 30, tzinfo=ZoneInfo(SITE_ZONE))
# the previous sync ran at 23:00 site time, i.e. 07:00 UTC, from a process that works in UTC
LAST_SYNC_UTC = datetime(2030, 1, 16, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_late_evening_edit_in_site_zone_found_by_incremental_query_from_utc(
    emulator_factory: Factory, settings: Settings, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=30, timezone=SITE_ZONE)
    server.state.set_now(LATE_EDIT_LOCAL)
    late = server.state.add_page("Written late in the evening")
    assert late.updated_at == LATE_EDIT_LOCAL.astimezone(UTC)

    def changed_since(site_timezone: str, overlap_hours: float) -> set[str]:
        tuned = settings.model_copy(
            update={"site_timezone": site_timezone, "sync_overlap_hours": overlap_hours}
        )

        async def walk() -> set[str]:
            async with ConfluenceClient(server.site_url, auth_for(server), settings=tuned) as c:
                return {
                    page.id async for page in c.iter_pages("DEMO", modified_since=LAST_SYNC_UTC)
                }

        return run(walk())

    # the configured site zone: found even with no overlap at all
    assert late.id in changed_since(SITE_ZONE, 0)
    # the same query formatted in UTC asks for edits after 07:00 *site* time and misses it:
    # this is the failure the zone setting prevents
    assert late.id not in changed_since("UTC", 0)
    # with the default day of overlap even a wrong zone setting still finds it
    assert late.id in changed_since("UTC", 24)
    queries = [r.query for r in server.state.requests if "/content/search" in r.path]
    assert any("2030-01-15+23%3A00" in query for query in queries)


def test_window_boundary_is_minute_granular(emulator_factory: Factory, settings: Settings) -> None:
    server = emulator_factory("datacenter", pages=10, timezone="Europe/Berlin")
    edit_at = datetime(2030, 6, 1, 21, 59, 40, tzinfo=UTC)  # 23:59:40 in Berlin (CEST)
    server.state.set_now(edit_at)
    page = server.state.add_page("Edited at the end of a minute")
    tuned = settings.model_copy(update={"site_timezone": "Europe/Berlin", "sync_overlap_hours": 0})

    async def since(moment: datetime) -> set[str]:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=tuned) as c:
            return {p.id async for p in c.iter_pages("DEMO", modified_since=moment)}

    # a sync that last ran 15 s *after* the edit, within the same minute, still sees it:
    # seconds are dropped (rounded down), never rounded up past the edit
    assert page.id in run(since(edit_at + timedelta(seconds=15)))
    assert page.id not in run(since(edit_at + timedelta(minutes=1)))
