"""Sources: one Confluence site + one or more spaces, with encrypted credentials.

Adding a source is all-or-nothing: the request is validated, the credentials are checked against
EVERY space through the real client, and only then is anything saved (source row + encrypted
credentials), so a typo in a token or a space key leaves no half-made source behind.

The API token never leaves this module in clear text except into the client's auth header: it is
not in ``repr`` of any record, not in the database (Fernet ciphertext only), not in a log line.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from confluence_rag.confluence.auth import SiteAuth
from confluence_rag.confluence.client import ConfluenceClient
from confluence_rag.confluence.models import Space
from confluence_rag.confluence.outbound import OutboundPolicy
from confluence_rag.confluence.site import SiteURL, normalise_site_url
from confluence_rag.errors import (
    Conflict,
    InvalidInput,
    SourceNotFound,
    StoreError,
)
from confluence_rag.records import JobRecord, SourceRecord
from confluence_rag.secrets import CredentialCipher
from confluence_rag.settings import Settings
from confluence_rag.store.base import Store

if TYPE_CHECKING:
    from confluence_rag.ingest.jobs import JobRunner

logger = logging.getLogger(__name__)

Flavour = Literal["cloud", "datacenter"]
PAGE_TYPES = ("page", "blogpost")
# Global space keys are letters and digits; personal spaces are "~" + a user name or account id.
_GLOBAL_KEY = re.compile(r"^[A-Za-z0-9]{1,255}$")
_PERSONAL_KEY = re.compile(r"^~[A-Za-z0-9._@+\-:]{1,255}$")
_TAG = re.compile(r"^[\w .:/+#-]{1,64}$")
MAX_SPACES = 50
CREDENTIALS_FORMAT = 1


@dataclass(frozen=True)
class NewSource:
    """A request to add a source, named as the seed API names its fields.

    ``space_key`` (one) and ``space_keys`` (several) may both be given; they are merged.
    ``api_token`` is a Cloud API token (with ``user_email``, required there) or a Data Center
    personal access token (sent as Bearer; ``user_email`` is not needed and not sent).
    ``flavour`` defaults to cloud for ``*.atlassian.net`` hosts, else datacenter.
    Skip rules left ``None`` follow the settings.
    """

    confluence_url: str
    api_token: str | SecretStr = field(repr=False)
    space_key: str | None = None
    space_keys: Sequence[str] = ()
    user_email: str | None = None
    flavour: Flavour | None = None
    knowledge_type: str = "technical"
    tags: Sequence[str] = ()
    page_types: Sequence[str] = PAGE_TYPES
    max_pages: int | None = None
    sync_frequency_hours: float | None = None
    skip_archived: bool | None = None
    skip_drafts: bool | None = None
    min_page_chars: int | None = None

    def token(self) -> str:
        value = self.api_token
        return value.get_secret_value() if isinstance(value, SecretStr) else value


@dataclass(frozen=True)
class SiteCredentials:
    """Decrypted credentials of a source. Lives only in memory, never in a repr or log."""

    flavour: Flavour
    api_token: str = field(repr=False)
    user_email: str | None = None

    def auth(self) -> SiteAuth:
        if self.flavour == "cloud":
            return SiteAuth.cloud(self.user_email or "", self.api_token)
        # Data Center authenticates with a personal access token alone (Bearer); an email
        # given with it is kept for display but not sent.
        return SiteAuth.datacenter(self.api_token)

    def to_bytes(self) -> bytes:
        payload = {
            "format": CREDENTIALS_FORMAT,
            "flavour": self.flavour,
            "user_email": self.user_email,
            "api_token": self.api_token,
        }
        return json.dumps(payload).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> SiteCredentials:
        payload = json.loads(data.decode("utf-8"))
        return cls(
            flavour=payload["flavour"],
            api_token=payload["api_token"],
            user_email=payload.get("user_email"),
        )


@dataclass(frozen=True)
class ValidatedSource:
    """A NewSource after validation and normalisation; still unsaved."""

    source_id: str
    site_url: str  # the API base (Cloud: with /wiki)
    flavour: Flavour
    space_keys: tuple[str, ...]
    credentials: SiteCredentials
    knowledge_type: str
    tags: tuple[str, ...]
    page_types: tuple[str, ...]
    max_pages: int | None
    sync_frequency_hours: float
    skip_rules: dict[str, Any]


def validate_new_source(new: NewSource, settings: Settings) -> ValidatedSource:
    """Check and normalise a request. Pure: raises ``InvalidSiteURL`` / ``InvalidInput``."""
    if new.flavour is not None and new.flavour not in ("cloud", "datacenter"):
        raise InvalidInput(
            f"flavour must be 'cloud' or 'datacenter', got {new.flavour!r}",
            details={"field": "flavour"},
        )
    site, site_label = site_of(new.confluence_url, new.flavour, settings)
    flavour = site.flavour
    keys = normalise_space_keys(new.space_key, new.space_keys)
    token = new.token().strip()
    if not token:
        raise InvalidInput("api_token is required", details={"field": "api_token"})
    email = (new.user_email or "").strip() or None
    if flavour == "cloud" and email is None:
        raise InvalidInput(
            "user_email is required for Confluence Cloud (email + API token)",
            details={"field": "user_email"},
        )
    if email is not None and ("\n" in email or ":" in email or len(email) > 320):
        raise InvalidInput("user_email is not valid", details={"field": "user_email"})
    page_types = tuple(dict.fromkeys(t.strip().lower() for t in new.page_types))
    if not page_types or any(t not in PAGE_TYPES for t in page_types):
        raise InvalidInput(
            f"page_types must be a non-empty subset of {list(PAGE_TYPES)}, "
            f"got {list(new.page_types)}",
            details={"field": "page_types"},
        )
    if new.max_pages is not None and new.max_pages < 1:
        raise InvalidInput("max_pages must be at least 1", details={"field": "max_pages"})
    frequency = (
        settings.default_sync_frequency_hours
        if new.sync_frequency_hours is None
        else new.sync_frequency_hours
    )
    if frequency < 0:
        raise InvalidInput(
            "sync_frequency_hours must be 0 (manual) or more",
            details={"field": "sync_frequency_hours"},
        )
    tags = tuple(dict.fromkeys(tag.strip() for tag in new.tags if tag.strip()))
    for tag in tags:
        if not _TAG.match(tag):
            raise InvalidInput(f"tag {tag!r} is not valid", details={"field": "tags"})
    knowledge_type = new.knowledge_type.strip() or "technical"
    if not _TAG.match(knowledge_type):
        raise InvalidInput("knowledge_type is not valid", details={"field": "knowledge_type"})
    if new.min_page_chars is not None and new.min_page_chars < 0:
        raise InvalidInput("min_page_chars must be 0 or more", details={"field": "min_page_chars"})
    skip_rules = {
        name: value
        for name, value in (
            ("skip_archived", new.skip_archived),
            ("skip_drafts", new.skip_drafts),
            ("min_page_chars", new.min_page_chars),
        )
        if value is not None
    }
    return ValidatedSource(
        source_id=make_source_id(site_label, keys),
        site_url=site.api_base,
        flavour=flavour,
        space_keys=keys,
        credentials=SiteCredentials(flavour=flavour, api_token=token, user_email=email),
        knowledge_type=knowledge_type,
        tags=tags,
        page_types=page_types,
        max_pages=new.max_pages,
        sync_frequency_hours=float(frequency),
        skip_rules=skip_rules,
    )


def site_of(url: str, flavour: Flavour | None, settings: Settings) -> tuple[SiteURL, str]:
    """The normalised site (the client's own rules) and its id part: ``host[:port][~path]``."""
    site = normalise_site_url(url, flavour)
    parts = urlsplit(site.api_base)
    # scheme, allowlist and IP-literal rules before anything is contacted (OutboundRefused)
    OutboundPolicy.from_settings(settings).check_url(site.api_base)
    path = parts.path
    if site.flavour == "cloud" and path.endswith("/wiki"):
        path = path[: -len("/wiki")]  # every Cloud site has it: noise in an id
    label = parts.netloc.lower()
    if path.strip("/"):
        label += "~" + path.strip("/").replace("/", "~")
    return site, label


def normalise_space_keys(space_key: str | None, space_keys: Sequence[str]) -> tuple[str, ...]:
    raw: list[str] = []
    if isinstance(space_keys, str):  # a common slip: "DEV,OPS" or "DEV"
        space_keys = [space_keys]
    for value in ([space_key] if space_key else []) + list(space_keys):
        raw.extend(part.strip() for part in re.split(r"[,\s]+", value or "") if part.strip())
    keys: list[str] = []
    for key in raw:
        if _GLOBAL_KEY.match(key):
            key = key.upper()
        elif not _PERSONAL_KEY.match(key):
            raise InvalidInput(
                f"{_shown(key)} is not a valid space key (letters and digits, or ~user for a "
                f"personal space)",
                details={"field": "space_keys"},
            )
        if key not in keys:
            keys.append(key)
    if not keys:
        raise InvalidInput("at least one space key is required", details={"field": "space_keys"})
    if len(keys) > MAX_SPACES:
        raise InvalidInput(
            f"at most {MAX_SPACES} spaces per source, got {len(keys)}",
            details={"field": "space_keys"},
        )
    return tuple(keys)


def make_source_id(site_label: str, keys: Sequence[str]) -> str:
    """Readable, stable and unique per (site, set of spaces): ``host[:port][~path]:KEY1+KEY2``.

    Keys are sorted so DEV+OPS and OPS+DEV are the same source. No ``/``: the id goes in URL
    paths."""
    return f"{site_label}:{'+'.join(sorted(keys))}"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


ClientFactory = Callable[..., Any]


class SourceService:
    """Add, list, update and delete sources; open a client with a source's credentials."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        jobs: JobRunner,
        *,
        cipher: Callable[[], CredentialCipher] | None = None,
        client_factory: ClientFactory = ConfluenceClient,
    ) -> None:
        self._store = store
        self._settings = settings
        self._jobs = jobs
        self._cipher_factory = cipher or (lambda: CredentialCipher.from_settings(settings))
        self._cipher: CredentialCipher | None = None
        self._client_factory = client_factory

    def cipher(self) -> CredentialCipher:
        if self._cipher is None:
            self._cipher = self._cipher_factory()
        return self._cipher

    async def add(
        self, new: NewSource, *, start: bool = True
    ) -> tuple[SourceRecord, JobRecord | None]:
        """Validate, check access to every space, then save and (``start``) queue a crawl."""
        valid = validate_new_source(new, self._settings)
        cipher = self.cipher()  # a bad secret key fails before Confluence is contacted
        if await self._exists(valid.source_id):
            raise Conflict(
                f"source {valid.source_id} already exists",
                details={"source_id": valid.source_id},
            )
        spaces = await self.check_access(valid.site_url, valid.credentials, valid.space_keys)
        record = _source_record(valid, spaces)
        ciphertext = cipher.encrypt(valid.credentials.to_bytes())
        await self._store.create_source(record)
        try:
            await self._store.put_credentials(valid.source_id, ciphertext)
        except BaseException:
            await self._store.delete_source(valid.source_id)
            raise
        logger.info("source %s added (%d spaces)", valid.source_id, len(spaces))
        job = await self._jobs.submit(valid.source_id, "crawl") if start else None
        return await self._store.get_source(valid.source_id), job

    async def check_access(
        self, site_url: str, credentials: SiteCredentials, keys: Sequence[str]
    ) -> list[Space]:
        """Every space, readable with these credentials, or the first clear error."""
        async with self._client_factory(
            site_url, credentials.auth(), settings=self._settings
        ) as client:
            return [await client.check_access(key) for key in keys]

    async def get(self, source_id: str) -> SourceRecord:
        return await self._store.get_source(source_id)

    async def list(self, *, counts: bool = True) -> list[SourceRecord]:
        """Every source; ``counts=False`` skips the page/chunk counts (left 0)."""
        return list(await self._store.list_sources(counts=counts))

    async def update(self, source_id: str, **fields: Any) -> SourceRecord:
        """Change settings of a source (``sync_frequency_hours``, ``paused``, ``tags``, ...)."""
        allowed = {"sync_frequency_hours", "paused", "tags", "knowledge_type", "max_pages"}
        unknown = set(fields) - allowed
        if unknown:
            raise InvalidInput(
                f"cannot update {sorted(unknown)}; updatable: {sorted(allowed)}",
                details={"fields": sorted(unknown)},
            )
        if (freq := fields.get("sync_frequency_hours")) is not None and freq < 0:
            raise InvalidInput("sync_frequency_hours must be 0 (manual) or more")
        if (limit := fields.get("max_pages")) is not None and limit < 1:
            raise InvalidInput("max_pages must be at least 1")
        current = await self._store.get_source(source_id)
        if "paused" in fields:
            # sync_status tells what the scheduler does with the source: a paused one is left
            # alone (an error stays visible until the next sync replaces it).
            if fields["paused"] and current.sync_status != "syncing":
                fields["sync_status"] = "paused"
            elif not fields["paused"] and current.sync_status == "paused":
                fields["sync_status"] = "active"
        await self._store.update_source(source_id, **fields)
        return await self._store.get_source(source_id)

    async def delete(self, source_id: str, *, wait_seconds: float = 30.0) -> None:
        """Cancel its job (if any), then remove the source, its pages, chunks, credentials."""
        await self._store.get_source(source_id)
        for job in await self._jobs.list(active_only=True, source_id=source_id):
            await self._jobs.cancel(job.id)
            await self._jobs.wait(job.id, timeout=wait_seconds)
        await self._store.delete_source(source_id)
        logger.info("source %s deleted", source_id)

    async def credentials(self, source_id: str) -> SiteCredentials:
        ciphertext = await self._store.get_credentials(source_id)
        data = self.cipher().decrypt(ciphertext)
        try:
            return SiteCredentials.from_bytes(data)
        except (ValueError, KeyError, TypeError):
            raise StoreError(f"stored credentials of {source_id} are unreadable") from None

    @asynccontextmanager
    async def open_client(self, source: SourceRecord) -> AsyncIterator[Any]:
        """A client for ``source`` with its decrypted credentials."""
        credentials = await self.credentials(source.id)
        async with self._client_factory(
            source.site_url, credentials.auth(), settings=self._settings
        ) as client:
            yield client

    async def _exists(self, source_id: str) -> bool:
        try:
            await self._store.get_source(source_id)
        except SourceNotFound:
            return False
        return True


def _source_record(valid: ValidatedSource, spaces: Sequence[Space]) -> SourceRecord:
    names = {key: space.name for key, space in zip(valid.space_keys, spaces, strict=True)}
    return SourceRecord(
        id=valid.source_id,
        site_url=valid.site_url,
        flavour=valid.flavour,
        space_keys=valid.space_keys,
        space_names=names,
        title=", ".join(name or key for key, name in names.items()),
        # Who, not the secret: shown in listings; the token lives only in the credentials.
        user_email=valid.credentials.user_email if valid.flavour == "cloud" else None,
        auth_kind="basic" if valid.flavour == "cloud" else "bearer",
        knowledge_type=valid.knowledge_type,
        tags=valid.tags,
        page_types=valid.page_types,
        skip_rules=valid.skip_rules,
        max_pages=valid.max_pages,
        sync_frequency_hours=valid.sync_frequency_hours,
    )
