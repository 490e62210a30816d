"""The ``store`` fixture: an opened, migrated, empty store, once per backend.

Contract tests in ``tests/store/`` take ``store`` and run against every backend listed in
``STORE_BACKENDS``. The PostgreSQL work plugs in by appending ``"postgres"`` to that list (from
its own plugin, e.g. ``tests/plugins/postgres.py``) and registering a factory in
``STORE_FACTORIES`` that builds a store on its throwaway server. The list is read when tests
are collected (``pytest_generate_tests``), after every plugin was imported, so import order
does not matter.

Async tests run on anyio's pytest plugin (``pytestmark = pytest.mark.anyio``) with asyncio.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from confluence_rag.settings import Settings
from confluence_rag.store import Store
from confluence_rag.store.migrate import upgrade
from confluence_rag.store.sqlite import SQLiteStore

#: Backends the contract suite runs against. The Postgres work appends "postgres".
STORE_BACKENDS: list[str] = ["sqlite"]

#: backend name -> factory(request, settings) -> unopened Store. Backends register here.
STORE_FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Settings], Store]] = {}


def store_backends() -> list[str]:
    return list(STORE_BACKENDS)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database migrated to head once per session; each test starts from a copy (a fresh
    migration costs ~0.5 s, a copy ~1 ms). ``open()`` still runs the migration check."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


def _sqlite(request: pytest.FixtureRequest, settings: Settings) -> Store:
    path = Path(settings.sqlite_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return SQLiteStore(path)


STORE_FACTORIES["sqlite"] = _sqlite


def make_store(backend: str, request: pytest.FixtureRequest, settings: Settings) -> Store:
    try:
        factory = STORE_FACTORIES[backend]
    except KeyError:
        raise pytest.UsageError(f"no store factory registered for backend {backend!r}") from None
    return factory(request, settings)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_backend" in metafunc.fixturenames:
        metafunc.parametrize("store_backend", store_backends(), indirect=True)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """The backend name this test instance runs against (parametrized per backend)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
async def store(
    store_backend: str, request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[Store]:
    """An open, empty store of each backend."""
    instance = make_store(store_backend, request, settings)
    async with instance:
        yield instance
