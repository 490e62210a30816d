"""Secrets: a full crawl through the real API, with every logger at DEBUG (httpx and httpcore
included) and injected faults so retry and error paths log too, leaves the Confluence token in no
log record, no job log or error, no API answer and no database file, in clear or as the Basic
``email:token`` value (base64 included). ``repr`` of settings, records and clients hides secrets.
A missing or wrong secret key is a clear error naming the setting on the API, the job and CLI.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from typer.testing import CliRunner

from confluence_rag.cli.main import app as cli_app
from confluence_rag.confluence.client import ConfluenceClient, SiteAuth
from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, DEMO_PAT, EmulatorServer, FaultRule
from confluence_rag.errors import SecretKeyError
from confluence_rag.ingest.sources import NewSource, SiteCredentials
from confluence_rag.secrets import ENV_NAME, CredentialCipher
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.reliability.security_app import API_TOKEN, app_settings, assert_error_shape, running_app

Factory = Callable[..., EmulatorServer]
WRONG_TOKEN = "wrong-confluence-token-QQ81x"
LOGGERS = ("", "httpx", "httpcore", "confluence_rag", "uvicorn", "uvicorn.error", "mcp", "asyncio")


def secret_forms(email: str, *tokens: str) -> list[str]:
    """Every way a token could show up: clear, Basic value, and its base64 (padded or not)."""
    forms: list[str] = []
    for token in tokens:
        basic = base64.b64encode(f"{email}:{token}".encode()).decode()
        forms += [token, basic, basic.rstrip("="), base64.b64encode(token.encode()).decode()]
    return forms


def new_key() -> str:
    return Fernet.generate_key().decode()


def assert_clean(text: str, forms: list[str], where: str) -> None:
    for form in forms:
        assert form not in text, f"a secret ({form[:6]}...) leaked into {where}"


@pytest.fixture
def embeddings() -> Iterator[FakeEmbeddingServer]:
    with FakeEmbeddingServer(dimension=32) as server:
        yield server


def wait_job(client: httpx.Client, progress_id: str, timeout: float = 180) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, object] = client.get(f"/api/progress/{progress_id}").json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_a_full_crawl_at_debug_leaks_no_token(
    emulator_factory: Factory,
    embeddings: FakeEmbeddingServer,
    isolated_env: Path,
    sqlite_template: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = emulator_factory(
        "cloud",
        pages=20,
        faults=[
            FaultRule("429", times=1, retry_after=0, path="/content/search"),
            FaultRule("500", times=1, path="/content/search"),
            FaultRule("drop", times=1, path="/content/search"),
        ],
    )
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    settings = app_settings(
        isolated_env, embeddings, sqlite_template, api_token=API_TOKEN, log_level="DEBUG"
    )
    forms = secret_forms(DEMO_EMAIL, DEMO_API_TOKEN, WRONG_TOKEN, API_TOKEN)
    answers: list[str] = []
    body = {
        "confluence_url": server.site_url,
        "user_email": DEMO_EMAIL,
        "space_key": "DEMO",
        "flavour": "cloud",
    }
    with running_app(settings) as client:
        client.headers["Authorization"] = f"Bearer {API_TOKEN}"
        refused = client.post("/api/confluence/sources", json={**body, "api_token": WRONG_TOKEN})
        assert_error_shape(refused, 401, "authentication_failed")
        answers.append(refused.text)
        added = client.post("/api/confluence/sources", json={**body, "api_token": DEMO_API_TOKEN})
        assert added.status_code == 201, added.text
        answers.append(added.text)
        job = wait_job(client, added.json()["progress_id"])
        assert job["status"] == "completed", job
        answers.append(str(job))
        answers.append(client.get("/api/confluence/sources").text)
        answers.append(client.get("/api/progress").text)
    assert server.state.request_count("/content/search") > 3  # the faults were met and retried

    records = caplog.records
    assert any(r.name.startswith("httpcore") for r in records), "httpcore DEBUG not captured"
    assert any(r.name.startswith("httpx") for r in records), "httpx DEBUG not captured"
    assert any("retrying" in r.getMessage() for r in records), "no retry was logged"
    for record in records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "")
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        assert_clean(text, forms, f"log record {record.name}: {record.getMessage()[:80]}")
    for answer in answers:
        assert_clean(answer, forms, "an API answer")
    # at rest: only Fernet ciphertext in the database (WAL and journal too)
    files = [p for p in settings.data_dir.iterdir() if p.name.startswith("confluence-rag.sqlite3")]
    assert files
    for path in files:
        raw = path.read_bytes().decode("latin-1")
        assert_clean(raw, forms[:4], f"database file {path.name}")


def test_repr_hides_secrets(settings: Settings) -> None:
    key = Fernet.generate_key().decode()
    configured = Settings(
        data_dir=settings.data_dir,
        secret_key=SecretStr(key),
        api_token=SecretStr(API_TOKEN),
        openai_api_key=SecretStr("sk-openai-secret-123"),
    )
    credentials = SiteCredentials(flavour="cloud", api_token=DEMO_API_TOKEN, user_email=DEMO_EMAIL)
    new = NewSource(confluence_url="https://acme.atlassian.net", api_token=DEMO_API_TOKEN)
    auth = SiteAuth.cloud(DEMO_EMAIL, DEMO_API_TOKEN)
    client = ConfluenceClient("https://acme.atlassian.net", auth, settings=configured)
    texts = [
        repr(configured),
        str(configured),
        repr(configured.model_dump()),
        repr(credentials),
        repr(new),
        repr(auth),
        repr(client),
        repr(CredentialCipher(key.encode(), origin=ENV_NAME)),
    ]
    asyncio.run(client.aclose())
    forms = secret_forms(DEMO_EMAIL, DEMO_API_TOKEN, API_TOKEN, "sk-openai-secret-123") + [key]
    for text in texts:
        assert_clean(text, forms, text[:60])


# --- the secret key -----------------------------------------------------------------------------
def test_a_malformed_key_is_a_clear_api_error_and_saves_nothing(
    emulator_factory: Factory,
    embeddings: FakeEmbeddingServer,
    isolated_env: Path,
    sqlite_template: Path,
) -> None:
    server = emulator_factory("datacenter", pages=3)
    settings = app_settings(
        isolated_env, embeddings, sqlite_template, secret_key=SecretStr("not-a-fernet-key")
    )
    with running_app(settings) as client:
        response = client.post(
            "/api/confluence/sources",
            json={
                "confluence_url": server.site_url,
                "api_token": "pat-1",
                "space_key": "DEMO",
                "flavour": "datacenter",
            },
        )
        assert_error_shape(response, 500, "secret_key_error")
        error = response.json()["error"]
        assert ENV_NAME in error["message"] and error["details"]["setting"] == ENV_NAME
        assert "not-a-fernet-key" not in response.text
        assert client.get("/api/confluence/sources").json()["count"] == 0
    assert server.state.request_count("/rest/api/space") == 0  # failed before any contact


def test_a_changed_key_fails_the_job_with_the_setting_named(
    emulator_factory: Factory,
    embeddings: FakeEmbeddingServer,
    isolated_env: Path,
    sqlite_template: Path,
) -> None:
    server = emulator_factory("datacenter", pages=3)
    first = app_settings(
        isolated_env,
        embeddings,
        sqlite_template,
        secret_key=SecretStr(Fernet.generate_key().decode()),
    )

    async def add() -> str:
        async with build_services(first) as services:
            source, _ = await services.sources.add(
                NewSource(
                    confluence_url=server.site_url,
                    api_token=DEMO_PAT,
                    space_key="DEMO",
                    flavour="datacenter",
                ),
                start=False,
            )
            return source.id

    source_id = asyncio.run(add())
    changed = first.model_copy(update={"secret_key": SecretStr(new_key())})

    async def sync() -> tuple[str, str | None]:
        async with build_services(changed) as services:
            services.jobs.start()
            job = await services.jobs.submit(source_id, "sync")
            done = await services.jobs.wait(job.id, timeout=180)
            return done.status, done.error

    status, error = asyncio.run(sync())
    assert status == "failed"
    assert error is not None and ENV_NAME in error and "cannot be decrypted" in error


def test_the_cli_names_the_setting_for_a_bad_key(
    embeddings: FakeEmbeddingServer, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    for name, value in embeddings.settings_env().items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    monkeypatch.setenv(ENV_NAME, "garbage")
    bad = runner.invoke(
        cli_app,
        ["add", "http://127.0.0.1:9", "--space", "DEMO", "--token", "t", "--flavour", "datacenter"],
        catch_exceptions=False,
    )
    assert bad.exit_code == 1
    output = " ".join(bad.output.split())
    assert "malformed" in output and ENV_NAME in output and "Traceback" not in output

    # no variable: the key file; a key file that cannot be read is named, not a stack trace
    monkeypatch.delenv(ENV_NAME)
    (isolated_env / "secret.key").mkdir(parents=True)
    unreadable = runner.invoke(
        cli_app,
        ["add", "http://127.0.0.1:9", "--space", "DEMO", "--token", "t", "--flavour", "datacenter"],
        catch_exceptions=False,
    )
    assert unreadable.exit_code == 1
    output = " ".join(unreadable.output.split())
    # Rich wraps the message at the terminal width, anywhere in a long tmp path: join the lines
    assert "secret.key" in "".join(output.split()), output
    assert ENV_NAME in output and "Traceback" not in output


def test_the_key_file_is_private_and_its_errors_are_clear(settings: Settings) -> None:
    cipher = CredentialCipher.from_settings(settings)
    path = settings.data_dir / "secret.key"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert cipher.decrypt(cipher.encrypt(b"x")) == b"x"
    path.write_bytes(b"")
    with pytest.raises(SecretKeyError, match=f"{path}.*empty.*{ENV_NAME}"):
        CredentialCipher.from_settings(settings)
