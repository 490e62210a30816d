"""Fixtures every test gets: an isolated data dir and environment, and the shared test data.

Fixture families live in tests/plugins/ (one module per part of the system) so each stays small;
tests/plugins/markers.py marks what needs PostgreSQL or the model (``make test-fast`` leaves
those out) from the fixtures a test uses.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from confluence_rag.settings import Settings

# pytest-xdist starts its workers with COLUMNS=80. Rich reads COLUMNS once, when a Console is
# built (the CLI builds its consoles at import, during collection), and would then keep 80
# columns even where a test asks for a wider terminal; without COLUMNS it reads the variable at
# each print, as in a run without xdist.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

pytest_plugins = [
    "tests.plugins.emulator",
    "tests.plugins.store",  # before postgres, which registers its backend in it
    "tests.plugins.postgres",
    "tests.plugins.markers",
]


def pytest_configure(config: pytest.Config) -> None:
    # A shell without job control starts background commands (`make test &`, a CI runner's
    # script) with SIGINT ignored, and an ignored signal stays ignored across exec: the CLI
    # processes the tests start would then never see the Ctrl-C the tests send them. Take the
    # signal back here, in the main process and in each xdist worker, so children start with
    # the default that a user's terminal gives them.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No test reads the user's configuration or writes to their data dir."""
    for name in list(os.environ):
        if name.startswith("CONFLUENCE_RAG_") and name not in _KEEP_ENV:
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("CONFLUENCE_RAG_DATA_DIR", str(data_dir))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # a stray .env in the checkout must not leak in
    yield data_dir


# Variables that point the suite at resources, not configuration under test.
_KEEP_ENV = {"CONFLUENCE_RAG_SHARED_DATA", "CONFLUENCE_RAG_TEST_DATABASE_URL"}


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    """Settings for a test: data in tmp, defaults otherwise."""
    return Settings(data_dir=isolated_env)


def _find_shared_data() -> Path | None:
    candidates = []
    if env := os.environ.get("CONFLUENCE_RAG_SHARED_DATA"):
        candidates.append(Path(env))
    repo = Path(__file__).resolve().parent.parent
    candidates.append(repo.parent / "shared" / "data")
    for candidate in candidates:
        if (candidate / "confluence").is_dir():
            return candidate
    return None


SHARED_DATA = _find_shared_data()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (real material written by others), or CONFLUENCE_RAG_SHARED_DATA.

    A user's clone has no ../shared, so tests that need it skip there with the reason; in CI
    (CI=true) its absence is a failure.
    """
    if SHARED_DATA is None:
        reason = "shared test data not found: set CONFLUENCE_RAG_SHARED_DATA or put it in ../shared"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return SHARED_DATA
