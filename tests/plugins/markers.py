"""Markers from what a test uses, so ``make test-fast`` (``-m "not slow and not postgres and not
browser and not model"``) leaves out exactly the tests that need those parts.

- ``postgres``: added to every test whose fixtures reach ``postgres_url`` (the session's server),
  and to the PostgreSQL instances of the store contract tests (``store_backend="postgres"``,
  whose store asks for the server at run time).
- ``model``: added to every test whose fixtures reach ``local_embedder``; a test that loads the
  real MiniLM some other way (a default ``Settings``, a subprocess) is marked by hand. So that a
  hand-marking cannot be forgotten, a test that loads the model in this process without the
  marker FAILS, naming the marker (the model is cached per process, so the first unmarked test
  to load it is the one caught; in a ``test-fast`` run that is any of them).
- ``browser`` and ``slow`` are set by hand (``pytestmark``) in the modules concerned.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from confluence_rag.index import local_embedder

#: fixture name -> the marker every test using it (even indirectly) gets
FIXTURE_MARKERS = {"postgres_url": "postgres", "local_embedder": "model"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("store_backend") == "postgres":
            used.add("postgres_url")
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in used and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


@pytest.fixture(autouse=True)
def _model_needs_the_marker(request: pytest.FixtureRequest) -> Iterator[None]:
    loaded = set(local_embedder._models)
    yield
    if request.node.get_closest_marker("model") is None and set(local_embedder._models) - loaded:
        pytest.fail(
            "this test loaded the local embedding model: mark it @pytest.mark.model so "
            "`make test-fast` leaves it out",
            pytrace=False,
        )
