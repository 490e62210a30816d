"""A 2,600-page space, listed through silent limit caps: every page exactly once.

One emulator per flavour serves every case (module scope); each case sets the caps the server
applies silently and asks for far more (``limit=1000``), so every page of the walk is "short".
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from confluence_rag.confluence.client import ConfluenceClient
from confluence_rag.emulator import EmulatorConfig, EmulatorServer, LimitCaps
from confluence_rag.settings import Settings
from tests.confluence.conftest import auth_for, run, served

SPACE = "DEMO"
PAGES = 2600


@pytest.fixture(scope="module", params=["cloud", "datacenter"])
def big_site(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    config = EmulatorConfig(flavour=request.param, pages=PAGES, seed=7)
    with EmulatorServer(config) as server:
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("include_body", [True, False], ids=["bodies", "no-bodies"])
@pytest.mark.parametrize("cap", [25, 50, 200, 1000])
def test_every_page_exactly_once_whatever_the_cap(
    big_site: EmulatorServer, settings: Settings, cap: int, include_body: bool
) -> None:
    state = big_site.state
    state.set_limit_caps(LimitCaps.uniform(cap))
    state.reset_requests()
    expected = state.current_ids(SPACE)
    assert len(expected) > 2400  # the generator trashes/archives a few; most are current

    async def walk() -> tuple[list[str], ConfluenceClient]:
        async with ConfluenceClient(big_site.site_url, auth_for(big_site), settings=settings) as c:
            ids = []
            async for page in c.iter_pages(SPACE, include_body=include_body, limit=1000):
                ids.append(page.id)
                assert (page.body_storage is not None) is include_body
                assert page.web_url.startswith(big_site.api_base + "/")
                assert page.space_key == SPACE
            return ids, c

    ids, client = run(walk())
    assert len(ids) == len(set(ids)), "a page was listed twice"
    assert set(ids) == expected, "pages missing or foreign"
    # the walk followed the server's pages: one request per capped page, none wasted, and no
    # result needed deduplicating (the server never repeated itself)
    pages_of_results = math.ceil(len(expected) / cap)
    assert client.stats.requests == pages_of_results
    assert served(big_site, "/content/search", pages_of_results) == pages_of_results
    assert client.stats.duplicates_skipped == 0
    assert client.stats.total_retries == 0


@pytest.mark.parametrize("cap", [200, 1000])
def test_id_listing_is_complete_with_versions(
    big_site: EmulatorServer, settings: Settings, cap: int
) -> None:
    state = big_site.state
    state.set_limit_caps(LimitCaps.uniform(cap))

    async def listing() -> dict[str, int]:
        async with ConfluenceClient(big_site.site_url, auth_for(big_site), settings=settings) as c:
            result = await c.iter_page_ids(SPACE)
            assert result.complete and result.error is None
            return {ref_id: ref.version for ref_id, ref in result.refs.items()}

    versions = run(listing())
    assert set(versions) == state.current_ids(SPACE)
    assert all(versions[i] == state.content(i).version for i in versions)


def test_fetch_pages_by_id_in_parallel(big_site: EmulatorServer, settings: Settings) -> None:
    state = big_site.state
    state.set_limit_caps(None)
    wanted = sorted(state.current_ids(SPACE))[:300] + ["999999999"]  # one that does not exist

    async def fetch() -> tuple[list[str], int]:
        async with ConfluenceClient(big_site.site_url, auth_for(big_site), settings=settings) as c:
            ids = [page.id async for page in c.fetch_pages(wanted, batch_size=25)]
            return ids, c.limiter.peak

    ids, peak = run(fetch())
    assert sorted(ids) == wanted[:-1]
    assert 1 < peak <= settings.max_concurrent_requests_per_site
