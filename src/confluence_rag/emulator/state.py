"""The emulator's live, in-memory Confluence: spaces, content, users, permissions, clock, faults
and a request log. Routes read and write it; tests drive it directly (add, edit, trash, restore,
move pages; set permissions; add faults; move the clock; read what was requested).

Every method is thread-safe (the server runs in a background thread while a test edits).
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import re
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from confluence_rag.emulator import cql, cql_eval
from confluence_rag.emulator.config import (
    DEMO_ACCOUNT_ID,
    DEMO_API_TOKEN,
    DEMO_EMAIL,
    DEMO_PAT,
    DEMO_USERNAME,
    RESTRICTED_ACCOUNT_ID,
    RESTRICTED_API_TOKEN,
    RESTRICTED_EMAIL,
    RESTRICTED_PAT,
    RESTRICTED_USERNAME,
    EmulatorConfig,
    LimitCaps,
)
from confluence_rag.emulator.corpus import GeneratedSpace, generate_space, generate_users
from confluence_rag.emulator.errors import ConfluenceApiError
from confluence_rag.emulator.faults import FaultInjector, FaultRule
from confluence_rag.emulator.gates import Gates
from confluence_rag.emulator.records import (
    AttachmentRecord,
    ContentRecord,
    ContentStatus,
    ContentType,
    SpaceRecord,
    User,
)

_TAG = re.compile(r"<[^>]+>")
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    method: str
    path: str
    query: str
    status: int
    account_id: str | None
    fault: str | None


class EmulatorState:
    """One emulated Confluence site. Build it from an EmulatorConfig; it generates its spaces."""

    def __init__(self, config: EmulatorConfig) -> None:
        # a copy: tests change caps and permissions on the live site, never the caller's config
        self.config = dataclasses.replace(config, faults=list(config.faults))
        self.zone: tzinfo = config.zone
        self._lock = threading.RLock()
        self._clock_at: datetime | None = config.start_time
        self.generation = 0  # bumped on every write; keys the query cache
        self.users: dict[str, User] = {}
        self.spaces: dict[str, SpaceRecord] = {}
        self.contents: dict[str, ContentRecord] = {}
        self.attachments: dict[str, AttachmentRecord] = {}
        self._readers: dict[str, set[str]] = {}
        self._credentials: dict[tuple[str, ...], str] = {}
        self.faults = FaultInjector(seed=config.seed, default_budget=config.timeout_budget)
        for rule in config.faults:
            self.faults.add(rule)
        self.gates = Gates()  # requests a test holds mid-crawl (gates.py)
        self.requests: deque[RequestRecord] = deque(maxlen=50_000)
        self.request_counts: Counter[str] = Counter()
        self._text_cache: dict[tuple[str, int, str], cql_eval.TextEntry] = {}
        self._query_cache: dict[tuple[str, int], list[ContentRecord]] = {}
        self._build()

    # ------------------------------------------------------------ setup

    def _build(self) -> None:
        config = self.config
        demo = User(DEMO_ACCOUNT_ID, "Demo User", DEMO_EMAIL, DEMO_USERNAME, "demo" + "0" * 28)
        restricted = User(
            RESTRICTED_ACCOUNT_ID,
            "Restricted User",
            RESTRICTED_EMAIL,
            RESTRICTED_USERNAME,
            "restricted" + "0" * 22,
        )
        site: list[GeneratedSpace] = []
        if config.site_dir is not None:
            from confluence_rag.emulator.loader import load_site

            site_users: dict[str, User] = {}
            site = load_site(config.site_dir, site_users)
            authors = list(site_users.values())
        else:
            authors = generate_users(config.seed)
        for user in (demo, restricted, *authors):
            self.users[user.account_id] = user
        self._credentials[("basic", DEMO_EMAIL, DEMO_API_TOKEN)] = demo.account_id
        self._credentials[("bearer", DEMO_PAT)] = demo.account_id
        self._credentials[("basic", RESTRICTED_EMAIL, RESTRICTED_API_TOKEN)] = restricted.account_id
        self._credentials[("bearer", RESTRICTED_PAT)] = restricted.account_id

        next_id = 100001
        next_attachment = 500001
        sizes = {config.space_key: config.pages, **config.extra_spaces}
        if site:  # a site names its own spaces
            sizes = {generated.space.key: len(generated.contents) for generated in site}
        for number, (key, size) in enumerate(sizes.items()):
            main = number == 0
            if site:
                generated = site[number]
            elif main and config.pages_dir is not None:
                from confluence_rag.emulator.loader import load_pages_dir

                generated = load_pages_dir(config.pages_dir, key, config.space_name, self.users)
            else:
                generated = generate_space(
                    config.seed,
                    size,
                    space_key=key,
                    space_name=config.space_name if main else None,
                    space_id=98305 + number * 65536,
                    first_id=next_id,
                    first_attachment_id=next_attachment,
                    users=authors,
                    flavour=config.flavour,
                )
            self.spaces[key] = generated.space
            for record in generated.contents:
                self.contents[record.id] = record
            for attachment in generated.attachments:
                self.attachments[attachment.id] = attachment
            next_id = max([next_id, *(int(c.id) + 1 for c in generated.contents if c.id.isdigit())])
            next_id = (next_id // 1000 + 1) * 1000 + 1
            next_attachment += len(generated.attachments) + 100
            # the main space is what the restricted user may not read
            readers = {demo.account_id} if main else {demo.account_id, restricted.account_id}
            self._readers[key] = readers | {u.account_id for u in authors}
        self._ids = itertools.count(next_id)
        self._attachment_ids = itertools.count(next_attachment)

    # ------------------------------------------------------------ clock

    def now(self) -> datetime:
        """The emulator's "now" (UTC, millisecond precision): real time unless a test set it."""
        with self._lock:
            moment = self._clock_at if self._clock_at is not None else datetime.now(UTC)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    def set_now(self, moment: datetime | None) -> None:
        """Freeze the clock at ``moment`` (aware datetime); None returns to real time."""
        if moment is not None and moment.tzinfo is None:
            raise ValueError("set_now needs a timezone-aware datetime")
        with self._lock:
            self._clock_at = moment

    def advance(self, delta: timedelta | float) -> datetime:
        """Move a frozen clock forward (seconds or timedelta); freezes a real clock first."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        with self._lock:
            self._clock_at = self.now() + step
            return self._clock_at

    # ------------------------------------------------------------ auth and permissions

    def authenticate(self, scheme: str, *parts: str) -> User | None:
        account = self._credentials.get((scheme, *parts))
        return self.users.get(account) if account else None

    def can_read(self, user: User, space_key: str) -> bool:
        with self._lock:
            return user.account_id in self._readers.get(space_key, set())

    def set_space_permission(self, space_key: str, who: str, allowed: bool) -> None:
        """Grant or revoke read access; ``who`` is an account id, email or username."""
        user = self.find_user(who)
        if user is None:
            raise KeyError(f"no user {who!r}")
        with self._lock:
            self._space(space_key)
            readers = self._readers.setdefault(space_key, set())
            if allowed:
                readers.add(user.account_id)
            else:
                readers.discard(user.account_id)
            self.generation += 1

    def find_user(self, who: str) -> User | None:
        for user in self.users.values():
            if who in (user.account_id, user.email, user.username, user.user_key):
                return user
        return None

    # ------------------------------------------------------------ reads

    def space(self, key: str) -> SpaceRecord:
        with self._lock:
            return self._space(key)

    def _space(self, key: str) -> SpaceRecord:
        space = self.spaces.get(key) or self.spaces.get(key.upper())
        if space is None:
            raise ConfluenceApiError(404, f"No space with key : {key}")
        return space

    def space_by_id(self, space_id: str) -> SpaceRecord:
        with self._lock:
            for space in self.spaces.values():
                if str(space.id) == space_id:
                    return space
        raise ConfluenceApiError(404, f"No space with id : {space_id}")

    def content(self, content_id: str) -> ContentRecord:
        with self._lock:
            record = self.contents.get(content_id)
        if record is None:
            raise ConfluenceApiError(
                404, f"No content found with id : ContentId{{id={content_id}}}"
            )
        return record

    def ancestors(self, record: ContentRecord) -> list[ContentRecord]:
        """Root first, direct parent last, as Confluence lists them."""
        chain: list[ContentRecord] = []
        seen: set[str] = {record.id}
        parent_id = record.parent_id
        while parent_id is not None and parent_id not in seen:
            parent = self.contents.get(parent_id)
            if parent is None:
                break
            chain.append(parent)
            seen.add(parent_id)
            parent_id = parent.parent_id
        chain.reverse()
        return chain

    def ancestor_ids(self, record: ContentRecord) -> list[str]:
        return [a.id for a in self.ancestors(record)]

    def children(self, parent_id: str, content_type: str = "page") -> list[ContentRecord]:
        with self._lock:
            found = [
                c
                for c in self.contents.values()
                if c.parent_id == parent_id and c.type == content_type and c.status == "current"
            ]
        return sorted(found, key=lambda c: (c.position, int(c.id) if c.id.isdigit() else 0))

    def attachments_of(self, content_id: str) -> list[AttachmentRecord]:
        with self._lock:
            return [a for a in self.attachments.values() if a.container_id == content_id]

    def text_of(self, record: ContentRecord) -> cql_eval.TextEntry:
        key = (record.id, record.version, record.title)
        entry = self._text_cache.get(key)
        if entry is None:
            body = _CDATA.sub(lambda m: " " + m.group(1) + " ", record.body)
            plain = html.unescape(_TAG.sub(" ", body))
            words = cql_eval.words_of(f"{record.title} {plain} {' '.join(record.labels)}")
            title_words = cql_eval.words_of(record.title)
            entry = cql_eval.TextEntry(
                words=frozenset(words),
                text=" ".join(words),
                title_words=frozenset(title_words),
                title_text=" ".join(title_words),
            )
            self._text_cache[key] = entry
        return entry

    def user_ids(self, value: str) -> set[str]:
        user = self.find_user(value)
        return {user.account_id} if user else set()

    def search(self, query_text: str, user: User) -> list[ContentRecord]:
        """Run CQL for ``user``: matches in spaces they may read, sorted. Raises CqlError."""
        query = cql.parse(query_text)
        with self._lock:
            cache_key = (query_text, self.generation)
            matches = self._query_cache.get(cache_key)
            uses_clock = "(" in query_text  # now()/startOfDay() results move with the clock
            if matches is None or uses_clock:
                predicate = cql_eval.compile_query(query)
                sort_key = cql_eval.sort_key_function(query.order)
                matches = sorted(
                    (c for c in self.contents.values() if predicate(c, self)), key=sort_key
                )
                if len(self._query_cache) > 64:
                    self._query_cache.clear()
                self._query_cache[cache_key] = matches
            readable = {k for k, readers in self._readers.items() if user.account_id in readers}
        return [c for c in matches if c.space_key in readable]

    def markers(self, space_key: str | None = None) -> dict[str, str]:
        """Page id -> unique phrase inside its first code block (current pages only)."""
        with self._lock:
            return {
                c.id: c.marker
                for c in self.contents.values()
                if c.marker is not None
                and c.status == "current"
                and (space_key is None or c.space_key == space_key)
            }

    def current_ids(
        self, space_key: str | None = None, content_type: str | None = None
    ) -> set[str]:
        """Ids a complete CQL listing of the space returns (current pages and blog posts)."""
        key = space_key or self.config.space_key
        with self._lock:
            return {
                c.id
                for c in self.contents.values()
                if c.space_key == key
                and c.status == "current"
                and (content_type is None or c.type == content_type)
            }

    # ------------------------------------------------------------ writes

    def _touch(self) -> None:
        self.generation += 1

    def create_content(
        self,
        *,
        title: str,
        space_key: str | None = None,
        body: str = "<p></p>",
        content_type: ContentType = "page",
        parent_id: str | None = None,
        labels: list[str] | None = None,
        author: str | None = None,
        status: ContentStatus = "current",
    ) -> ContentRecord:
        """Create a page or blog post at version 1, as POST /rest/api/content does."""
        key = space_key or self.config.space_key
        account = self._author(author)
        with self._lock:
            space = self._space(key)
            if not title.strip():
                raise ConfluenceApiError(400, "Title cannot be empty")
            if parent_id is not None:
                parent = self.content(parent_id)
                if parent.space_key != space.key:
                    raise ConfluenceApiError(400, "The parent page must be in the same space")
            if content_type == "page":
                self._check_title_free(space.key, title, None)
            now = self.now()
            record = ContentRecord(
                id=str(next(self._ids)),
                type=content_type,
                status=status,
                title=title,
                space_key=space.key,
                body=body,
                created_at=now,
                created_by=account,
                updated_at=now,
                updated_by=account,
                parent_id=parent_id if content_type == "page" else None,
                labels=list(labels or []),
                position=len(self.contents),
            )
            self.contents[record.id] = record
            self._touch()
            return record

    def update_content(
        self,
        content_id: str,
        *,
        version: int | None = None,
        title: str | None = None,
        body: str | None = None,
        status: ContentStatus | None = None,
        space_key: str | None = None,
        parent_id: str | None = None,
        minor_edit: bool = False,
        message: str = "",
        author: str | None = None,
    ) -> ContentRecord:
        """Publish a new version (PUT semantics): ``version`` must be current + 1 (None means
        "the next one"). Restores a trashed page when ``status`` is "current"; moves it when
        ``space_key``/``parent_id`` change. Bumps ``lastmodified`` to now."""
        account = self._author(author)
        with self._lock:
            record = self.content(content_id)
            wanted = record.version + 1 if version is None else version
            if wanted != record.version + 1:
                raise ConfluenceApiError(
                    409,
                    f"Version must be incremented on update. Current version is: {record.version}",
                )
            if record.status == "trashed" and status != "current":
                raise ConfluenceApiError(
                    409, f"Cannot update trashed content {content_id}; restore it first"
                )
            if status == "current" and record.status == "trashed":
                self._restore(record)
            elif status is not None:
                record.status = status
            if space_key is not None and space_key != record.space_key or parent_id is not None:
                self._move(record, space_key or record.space_key, parent_id)
            if title is not None and title != record.title:
                if record.type == "page":
                    self._check_title_free(record.space_key, title, record.id)
                record.title = title
            if body is not None:
                record.body = body
            record.version = wanted
            record.updated_at = self.now()
            record.updated_by = account
            record.minor_edit = minor_edit
            record.version_message = message
            self._touch()
            return record

    def trash(self, content_id: str) -> ContentRecord:
        """Move to the trash (DELETE): children move up to the trashed page's parent."""
        with self._lock:
            record = self.content(content_id)
            if record.status == "trashed":
                raise ConfluenceApiError(404, f"Content {content_id} is already in the trash")
            for child in self.contents.values():
                if child.parent_id == record.id:
                    child.parent_id = record.parent_id
            record.trashed_from_parent = record.parent_id
            record.parent_id = None
            record.status = "trashed"
            self._touch()
            return record

    def purge(self, content_id: str) -> None:
        """Delete for good (DELETE ?status=trashed): only trashed content can be purged."""
        with self._lock:
            record = self.content(content_id)
            if record.status != "trashed":
                raise ConfluenceApiError(
                    400, f"Content {content_id} must be in the trash before it can be purged"
                )
            del self.contents[content_id]
            for attachment_id in [a.id for a in self.attachments_of(content_id)]:
                del self.attachments[attachment_id]
            self._touch()

    def restore(self, content_id: str) -> ContentRecord:
        """Take a page out of the trash (a new version, as Confluence's restore is an update)."""
        return self.update_content(content_id, status="current")

    def move(self, content_id: str, space_key: str, parent_id: str | None = None) -> ContentRecord:
        """Move a page (and its subtree) to another space or parent. Like Confluence, a move is
        not a new version and does not change ``lastmodified``."""
        with self._lock:
            record = self.content(content_id)
            self._move(record, space_key, parent_id)
            self._touch()
            return record

    def add_label(self, content_id: str, label: str) -> None:
        with self._lock:
            record = self.content(content_id)
            if label not in record.labels:
                record.labels.append(label)
            self._touch()

    def add_attachment(
        self, content_id: str, title: str, data: bytes, media_type: str = "application/octet-stream"
    ) -> AttachmentRecord:
        with self._lock:
            record = self.content(content_id)
            attachment = AttachmentRecord(
                id=f"att{next(self._attachment_ids)}",
                container_id=record.id,
                title=title,
                media_type=media_type,
                data=data,
                created_at=self.now(),
                author_id=record.updated_by,
            )
            self.attachments[attachment.id] = attachment
            self._touch()
            return attachment

    # test conveniences with the names a test reads best
    def add_page(
        self, title: str, body: str = "<p>New page.</p>", **kwargs: object
    ) -> ContentRecord:
        return self.create_content(title=title, body=body, **kwargs)  # type: ignore[arg-type]

    def edit_page(self, content_id: str, **kwargs: object) -> ContentRecord:
        return self.update_content(content_id, **kwargs)  # type: ignore[arg-type]

    def _restore(self, record: ContentRecord) -> None:
        parent = self.contents.get(record.trashed_from_parent or "")
        ok = parent is not None and parent.status == "current"
        record.parent_id = parent.id if ok and parent is not None else None
        record.trashed_from_parent = None
        record.status = "current"
        if record.type == "page":
            self._check_title_free(record.space_key, record.title, record.id)

    def _move(self, record: ContentRecord, space_key: str, parent_id: str | None) -> None:
        space = self._space(space_key)
        if parent_id is not None:
            parent = self.content(parent_id)
            if parent.space_key != space.key:
                raise ConfluenceApiError(400, "The new parent must be in the target space")
            if parent.id == record.id or record.id in self.ancestor_ids(parent):
                raise ConfluenceApiError(400, "A page cannot be moved below itself")
        if space.key != record.space_key and record.type == "page":
            self._check_title_free(space.key, record.title, record.id)
        subtree = [record, *self._descendants(record.id)]
        for item in subtree:
            item.space_key = space.key
        record.parent_id = parent_id

    def _descendants(self, content_id: str) -> list[ContentRecord]:
        out: list[ContentRecord] = []
        frontier = [content_id]
        while frontier:
            current = frontier.pop()
            for child in self.contents.values():
                if child.parent_id == current:
                    out.append(child)
                    frontier.append(child.id)
        return out

    def _check_title_free(self, space_key: str, title: str, own_id: str | None) -> None:
        for other in self.contents.values():
            if (
                other.space_key == space_key
                and other.type == "page"
                and other.status == "current"
                and other.id != own_id
                and other.title.lower() == title.lower()
            ):
                raise ConfluenceApiError(
                    400,
                    "A page with this title already exists: A page already exists with the "
                    f"title {title} in the space with key {space_key}",
                )

    def _author(self, who: str | None) -> str:
        if who is None:
            return DEMO_ACCOUNT_ID
        user = self.find_user(who)
        if user is None:
            raise KeyError(f"no user {who!r}")
        return user.account_id

    # ------------------------------------------------------------ faults, caps, request log

    def set_limit_caps(self, caps: LimitCaps | None) -> None:
        """Change the silent limit caps of a running emulator (None: the flavour's defaults)."""
        with self._lock:
            self.config.caps = caps

    def add_fault(self, rule: FaultRule) -> FaultRule:
        self.faults.add(rule)
        return rule

    def clear_faults(self) -> None:
        self.faults.clear()

    def record_request(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)
            self.request_counts[record.path] += 1

    def request_count(self, path_contains: str = "", *, status: int | None = None) -> int:
        """How many requests were served whose path contains ``path_contains``."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if path_contains in r.path and (status is None or r.status == status)
            )

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.request_counts.clear()


Clock = Callable[[], datetime]
