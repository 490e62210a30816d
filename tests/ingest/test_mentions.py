"""Mentions are indexed by name: "@Ada Haddad", not "@5d2900eddc300474ca4553a7".

- ``find_mentions`` pulls the ids out of storage XHTML (pure cases).
- ``UserDirectory`` asks the real client (over the emulator's socket) only for ids it has not
  asked about in this job, and a failed or slow lookup never fails a page.
- A crawl of an emulator space (Cloud: ``ri:account-id``; Data Center: ``ri:userkey``) stores
  Markdown and serves snippets that show the mentioned people's names.
"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from confluence_rag.confluence.client import ConfluenceClient
from confluence_rag.emulator import EmulatorServer, FaultRule
from confluence_rag.emulator.records import User
from confluence_rag.ingest.people import MAX_FAILURES, Mentions, UserDirectory, find_mentions
from confluence_rag.records import SearchFilters, page_key
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from tests.confluence.conftest import RecordedSleep, auth_for
from tests.ingest.conftest import new_source, run
from tests.plugins.emulator import EmulatorFactory


@pytest.mark.parametrize(
    ("storage", "ids", "usernames"),
    [
        (None, set(), set()),
        ("<p>nobody here</p>", set(), set()),
        ('<ac:link><ri:user ri:account-id="5b10ac8d" /></ac:link>', {"5b10ac8d"}, set()),
        # Data Center: user key, else username; the key wins when both are there
        ("<ac:link><ri:user ri:userkey='8a80cb81' ri:username='jsmith'/></ac:link>",
         {"8a80cb81"}, set()),
        ('<ac:link><ri:user ri:username="j&amp;smith"/></ac:link>', set(), {"j&smith"}),
        # several, repeated, in a task assignee and a profile macro; an empty one is ignored
        ('<ri:user ri:account-id="a1"/><ri:user ri:account-id="a2"></ri:user>'
         '<ri:user ri:account-id="a1"/><ri:user ri:account-id=""/><ri:user/>',
         {"a1", "a2"}, set()),
        # not a user: a page link's attributes do not count
        ('<ri:page ri:content-title="ri:user" ri:account-id="x"/>', set(), set()),
        # malformed markup yields what it can
        ('<ri:user ri:account-id="ok"><ri:user ri:account-id="broken', {"ok"}, set()),
    ],
)  # fmt: skip
def test_find_mentions(storage: str | None, ids: set[str], usernames: set[str]) -> None:
    assert find_mentions(storage) == Mentions(frozenset(ids), frozenset(usernames))


def body_mentioning(ids: list[str], attribute: str = "ri:account-id") -> str:
    links = "".join(f'<ac:link><ri:user {attribute}="{i}" /></ac:link> ' for i in ids)
    return f"<p>ask {links}</p>"


def authors(server: EmulatorServer) -> list[User]:
    return [u for u in server.state.users.values() if u.display_name != "Demo User"]


def test_directory_asks_once_per_id_per_job(
    cloud_emulator: EmulatorServer, settings: Settings
) -> None:
    people = authors(cloud_emulator)
    a, b, c = people[0], people[1], people[2]

    async def scenario() -> list[dict[str, str]]:
        async with ConfluenceClient(
            cloud_emulator.site_url, auth_for(cloud_emulator), settings=settings
        ) as client:
            directory = UserDirectory(client)
            pages = [
                body_mentioning([a.account_id, b.account_id, "5unknown"]),
                body_mentioning([b.account_id, "5unknown"]),  # all asked before: no request
                body_mentioning([a.account_id, c.account_id]),  # only c is new
                "<p>no mentions</p>",
            ]
            # the converter thread's view: each page blocks only its own thread
            answers = [await asyncio.to_thread(directory.names_for, body) for body in pages]
            assert directory.lookups == 2
            return answers

    answers = run(scenario())
    assert answers == [
        {a.account_id: a.display_name, b.account_id: b.display_name},
        {b.account_id: b.display_name},
        {a.account_id: a.display_name, c.account_id: c.display_name},
        {},
    ]
    assert cloud_emulator.state.request_count("/rest/api/user/bulk") == 2


def test_failing_lookups_leave_ids_and_stop_after_a_few(
    emulator_factory: EmulatorFactory, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    server = emulator_factory(
        "datacenter",
        pages=1,
        extra_spaces={},
        faults=[FaultRule(kind="500", path="/rest/api/user")],
    )
    keys = [u.user_key for u in authors(server)]
    caplog.set_level(logging.WARNING)
    notes: list[str] = []

    async def scenario() -> list[dict[str, str]]:
        async with ConfluenceClient(
            server.site_url, auth_for(server), settings=settings, sleep=RecordedSleep()
        ) as client:
            directory = UserDirectory(client, note=notes.append)
            answers = [
                await asyncio.to_thread(directory.names_for, body_mentioning([k], "ri:userkey"))
                for k in keys
            ]
            assert directory.lookups == MAX_FAILURES and not directory.enabled
            return answers

    assert run(scenario()) == [{}] * len(keys)
    gave_up = [r for r in caplog.records if "no more lookups in this job" in r.getMessage()]
    assert len(gave_up) == 1
    assert len(notes) == 1 and "keeps failing" in notes[0] and "RetryBudget" not in notes[0]


def test_a_slow_lookup_times_out_without_failing(
    emulator_factory: EmulatorFactory, settings: Settings
) -> None:
    server = emulator_factory("cloud", pages=1, extra_spaces={})
    server.state.gates.add(path="/rest/api/user")  # the lookup never gets an answer
    someone = authors(server)[0]

    async def scenario() -> dict[str, str]:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=settings) as client:
            directory = UserDirectory(client, timeout=0.2)
            body = body_mentioning([someone.account_id])
            names = await asyncio.to_thread(directory.names_for, body)
            # on the loop's own thread the directory answers from its cache, never waits
            assert directory.names_for(body) == {}
            return names

    assert run(scenario()) == {}


def visible(snippet_html: str) -> str:
    return re.sub(r"<[^>]+>", "", snippet_html)


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_crawl_indexes_mentions_by_name(
    fast_settings: Settings, emulator_factory: EmulatorFactory, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=12, extra_spaces={})
    cloud = flavour == "cloud"
    by_id = {(u.account_id if cloud else u.user_key): u for u in server.state.users.values()}
    mentioned = {
        page_id: find_mentions(server.state.content(page_id).body).ids
        for page_id in server.state.current_ids("DEMO")
    }
    assert sum(1 for ids in mentioned.values() if ids) >= 3, "the generator mentions people"

    async def scenario() -> None:
        async with build_services(fast_settings) as services:
            source, job = await services.sources.add(new_source(server))
            assert job is not None
            services.jobs.start()
            done = await services.jobs.wait(job.id, timeout=120)
            assert done.status == "completed", done.error
            stored = await services.store.page_versions(source.id)
            checked: list[str] = []  # display names, once per mention
            for page_id in stored:
                markdown = (await services.store.get_page(page_key(source.id, page_id))).markdown
                assert markdown is not None
                for ident in mentioned[page_id]:
                    user = by_id[ident]
                    assert f"[@{user.display_name}](" in markdown
                    assert f"@{ident}" not in markdown
                    checked.append(user.display_name)
            assert checked, "no stored page mentions anyone"
            # what a reader of search results sees: the name, never the id
            name = max(sorted(set(checked)), key=checked.count)
            hits = await services.search.search(
                f"@{name}", SearchFilters(source_id=source.id), retriever="keyword"
            )
            snippets = [visible(h.snippet_html) for h in hits]
            assert any(f"@{name}" in s for s in snippets), snippets
            assert not any(ident in s for s in snippets for ident in by_id)
            # each id asked about once per job, whatever the number of pages naming it
            distinct = set().union(*mentioned.values())
            lookups = server.state.request_count("/rest/api/user")
            if cloud:
                assert 1 <= lookups <= len(distinct) < len(checked)
            else:
                assert lookups == len(distinct) < len(checked)

    run(scenario())


def test_crawl_on_a_site_that_hides_its_people_keeps_ids(
    fast_settings: Settings, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=8, extra_spaces={}, user_lookup=False)
    expected = server.state.current_ids("DEMO")

    async def scenario() -> None:
        async with build_services(fast_settings) as services:
            source, job = await services.sources.add(new_source(server))
            assert job is not None
            services.jobs.start()
            done = await services.jobs.wait(job.id, timeout=120)
            assert done.status == "completed", done.error
            c = done.counters
            assert c["pages_failed"] == 0
            assert c["pages_processed"] + c["pages_skipped"] == len(expected)
            shown = ""
            for page_id in await services.store.page_versions(source.id):
                page = await services.store.get_page(page_key(source.id, page_id))
                shown += page.markdown or ""
            ids = set().union(*(find_mentions(server.state.content(i).body).ids for i in expected))
            assert any(f"[@{i}](" in shown for i in ids)  # as before: the id stands in
            assert server.state.request_count("/rest/api/user") == 1  # refused once, not again
            # the job says why, once
            told = [line for line in done.log if "refused to look users up (403)" in line]
            assert len(told) == 1, done.log

    run(scenario())
