"""The async Confluence REST client: every page exactly once, through rate limits and failures.

Operations (``check_access``, ``iter_pages``, ``iter_page_ids``, ``fetch_pages``, ``get_page``,
``list_attachments``, ``download_attachment``, ``user_names``) are built from three parts: every
GET goes through :class:`SiteSession` (shared per-site limiter, retries, stats), listings walk
``_links.next`` (``paging.py``), payloads become records in ``parse.py``, and queries are built
in ``cql.py`` (user lookups in ``users.py``). This module decides what a status *means* for
each operation and says it in a message a user can act on.

Secrets: ``repr(client)`` names the site and the account only; messages name the account
(email) or "a personal access token", never a token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlencode

import httpx

from confluence_rag.confluence import cql
from confluence_rag.confluence.auth import SiteAuth
from confluence_rag.confluence.models import Attachment, IdListing, Page, PageRef, Space
from confluence_rag.confluence.paging import LimitGovernor, int_param, next_page_url, with_params
from confluence_rag.confluence.parse import (
    ListingPage,
    not_an_api,
    parse_attachment,
    parse_listing,
    parse_page,
    parse_page_ref,
    parse_space,
    resolve_link,
    server_message,
)
from confluence_rag.confluence.retry import (
    RetryPolicy,
    RetryReason,
    SiteLimiter,
    SiteLimiterRegistry,
)
from confluence_rag.confluence.session import (
    ClientStats,
    Reply,
    SiteSession,
    SleepFunc,
    short,
)
from confluence_rag.confluence.site import SiteURL, normalise_site_url
from confluence_rag.confluence.users import UserLookup
from confluence_rag.errors import (
    AttachmentTooLarge,
    AuthenticationFailed,
    ConfluenceError,
    ConfluenceUnreachable,
    ContentNotFound,
    InvalidCQL,
    RetryBudgetExhausted,
    SpaceAccessDenied,
    SpaceNotFound,
    UnexpectedResponse,
)
from confluence_rag.settings import Settings

__all__ = ["ClientStats", "ConfluenceClient", "SiteAuth"]

logger = logging.getLogger("confluence_rag.confluence")

# What a listing expands. Bodies: everything a Page needs. Ids: the version number only, which
# keeps the deletion check cheap (no body, no ancestors).
PAGE_EXPAND = "body.storage,version,ancestors,metadata.labels,space,history"
META_EXPAND = "version,ancestors,metadata.labels,space,history"
ID_EXPAND = "version"
# What we ask for; servers cap silently below these (Data Center 50 / 200 / 1000).
BODY_LIMIT = 50
META_LIMIT = 200
ID_LIMIT = 1000
ATTACHMENT_LIMIT = 200
# Pages in a row that bring nothing new before a walk is declared stuck (a server repeating
# its cursor would otherwise loop forever).
MAX_STALE_PAGES = 3
_CONTEXT_HINT = "check the site URL (for Data Center include the context path, e.g. /confluence)"


class ConfluenceClient:
    """Async client for one Confluence site. Use as ``async with ConfluenceClient(...)``.

    ``sleep`` waits before retries (tests pass a recorder); ``limiters`` shares concurrency
    limits between clients of one site (defaults to the process-wide registry).
    """

    def __init__(
        self,
        site_url: str,
        auth: SiteAuth,
        *,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: SleepFunc | None = None,
        limiters: SiteLimiterRegistry | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.site: SiteURL = normalise_site_url(site_url, auth.flavour)
        self.auth = auth
        self.settings = settings
        self.zone = cql.site_zone(settings.site_timezone)
        self._session = SiteSession(
            self.site,
            auth,
            settings=settings,
            transport=transport,
            sleep=sleep,
            limiters=limiters,
            policy=policy,
        )
        self._users = UserLookup(self._session, self.site.api_base, auth, self._reply_error)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ConfluenceClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._session.aclose()

    def __repr__(self) -> str:
        return f"ConfluenceClient({self.site.api_base!r}, {self.auth!r})"

    @property
    def api_base(self) -> str:
        return self.site.api_base

    @property
    def limiter(self) -> SiteLimiter:
        """The site's shared limiter: all clients of this site (in this event loop) use it."""
        return self._session.limiter

    @property
    def stats(self) -> ClientStats:
        return self._session.stats

    # ------------------------------------------------------------------ operations

    async def check_access(self, space_key: str) -> Space:
        """Check credentials and read permission on ``space_key`` before any crawl.

        Raises AuthenticationFailed (401), SpaceAccessDenied (403), SpaceNotFound (404),
        ConfluenceUnreachable (DNS/connect/TLS), UnexpectedResponse (no Confluence API there).
        """
        return await self.get_space(space_key)

    async def get_space(self, space_key: str) -> Space:
        key = cql.validate_space_key(space_key)
        url = f"{self.api_base}/rest/api/space/{url_quote(key, safe='~')}?expand=homepage"
        reply = await self._session.get_json(url)
        status = reply.response.status_code
        if status == 200:
            return parse_space(self._json(reply), base=self.api_base)
        self._raise_for_auth(reply)
        if status == 403:
            raise SpaceAccessDenied(
                f"{self.auth.identity} may not read space {key} at {self.api_base}: ask a space "
                "admin for 'View' permission, or use an account that has it.",
                details={"space_key": key, "site": self.api_base},
            )
        if status == 404:
            if not_an_api(reply.response):
                raise self._no_api_here(reply)
            raise SpaceNotFound(
                f"There is no space with key {key} at {self.api_base} that {self.auth.identity} "
                "can see: check the key (shown in the space's URL) and its permissions.",
                details={"space_key": key, "site": self.api_base},
            )
        raise self._unexpected(reply, f"reading space {key}")

    async def iter_pages(
        self,
        space_key: str,
        types: Iterable[str] = cql.PAGE_TYPES,
        modified_since: datetime | None = None,
        include_body: bool = True,
        *,
        labels: Iterable[str] = (),
        limit: int | None = None,
    ) -> AsyncGenerator[Page, None]:
        """Every page (and blog post) of a space, each exactly once, via CQL search.

        ``modified_since`` (aware datetime, the last sync) lists only what changed since then,
        minus the configured overlap, read in the site's time zone; callers dedupe by version.
        The next page is fetched while the caller works on this one.
        """
        query = cql.content_cql(
            space_key,
            types=types,
            modified_since=modified_since,
            zone=self.zone,
            overlap=timedelta(hours=self.settings.sync_overlap_hours),
            labels=labels,
        )
        expand = PAGE_EXPAND if include_body else META_EXPAND
        size = limit or (BODY_LIMIT if include_body else META_LIMIT)
        # aclosing: a caller that stops early closes the whole chain now, which cancels the
        # prefetch in flight, instead of leaving it to the garbage collector
        async with aclosing(self._search(query, expand=expand, limit=size)) as items:
            async for item, base in items:
                yield parse_page(item, base=base, space_key=space_key)

    async def iter_page_ids(
        self,
        space_key: str,
        types: Iterable[str] = cql.PAGE_TYPES,
        *,
        limit: int = ID_LIMIT,
    ) -> IdListing:
        """Ids and versions of every page in a space, for deletion checks.

        ``complete`` is True only when the walk reached its end. A listing that failed part-way
        (retries exhausted, host gone, nonsense response) comes back with ``complete=False`` and
        the error: the caller must then delete nothing. Errors that mean the crawl cannot work
        at all (credentials, permission, unknown space, bad query) are raised instead.
        """
        query = cql.content_cql(space_key, types=types)
        listing = IdListing()
        try:
            async with aclosing(self._search(query, expand=ID_EXPAND, limit=limit)) as items:
                async for item, _base in items:
                    ref: PageRef = parse_page_ref(item)
                    listing.refs[ref.id] = ref
        except (RetryBudgetExhausted, ConfluenceUnreachable, UnexpectedResponse) as error:
            logger.warning(
                "id listing of space %s stopped after %d pages: %s",
                space_key,
                len(listing.refs),
                error.message,
            )
            listing.complete = False
            listing.error = error.message
            return listing
        listing.complete = True
        return listing

    async def fetch_pages(
        self, page_ids: Iterable[str], *, include_body: bool = True, batch_size: int = 25
    ) -> AsyncGenerator[Page, None]:
        """Known pages by id, several CQL batches in flight (bounded by the site limiter).

        For syncs and big crawls: list ids and versions cheaply with :meth:`iter_page_ids`,
        then fetch only what is new or changed, in parallel. Ids that no longer exist are simply
        not yielded. Pages come in batch completion order.
        """
        ids = [cql.validate_page_id(page_id) for page_id in dict.fromkeys(page_ids)]
        batches = [ids[i : i + batch_size] for i in range(0, len(ids), max(1, batch_size))]
        expand = PAGE_EXPAND if include_body else META_EXPAND
        results: asyncio.Queue[list[Page] | Exception] = asyncio.Queue()

        async def run(batch: list[str]) -> None:
            search = self._search(
                cql.ids_cql(batch), expand=expand, limit=len(batch), prefetch=False
            )
            try:
                async with aclosing(search) as items:
                    pages = [parse_page(item, base=base) async for item, base in items]
                await results.put(pages)
            except Exception as error:  # handed to the consumer, who re-raises it
                await results.put(error)

        # one task per batch, but only as many running as the limiter has slots: the rest wait
        # on the limiter inside the session, so memory stays bounded by batch results in the queue
        workers = max(1, self.limiter.limit)
        pending = iter(batches)
        running: set[asyncio.Task[None]] = set()

        def start_next() -> None:
            batch = next(pending, None)
            if batch is not None:
                running.add(asyncio.create_task(run(batch)))

        for _ in range(workers):
            start_next()
        try:
            for _ in range(len(batches)):
                outcome = await results.get()
                if isinstance(outcome, Exception):
                    raise outcome
                start_next()
                for page in outcome:
                    yield page
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def get_page(self, page_id: str) -> Page:
        """One page with body, labels and ancestors. ContentNotFound on 404 or 403."""
        page_id = cql.validate_page_id(page_id)
        url = f"{self.api_base}/rest/api/content/{page_id}?" + urlencode({"expand": PAGE_EXPAND})
        reply = await self._session.get_json(url)
        if reply.response.status_code == 200:
            return parse_page(self._json(reply), base=self.api_base)
        self._raise_for_auth(reply)
        if reply.response.status_code in (403, 404):
            raise ContentNotFound(
                f"Page {page_id} does not exist at {self.api_base} or "
                f"{self.auth.identity} may not read it.",
                details={"page_id": page_id},
            )
        raise self._unexpected(reply, f"reading page {page_id}")

    async def list_attachments(self, page_id: str) -> list[Attachment]:
        """Every attachment of a page (all pages of the listing). ContentNotFound on 404/403."""
        page_id = cql.validate_page_id(page_id)
        url = f"{self.api_base}/rest/api/content/{page_id}/child/attachment?" + urlencode(
            {"limit": ATTACHMENT_LIMIT, "expand": "version"}
        )
        attachments: list[Attachment] = []
        try:
            async with aclosing(self._walk(url, shrinkable=False, prefetch=False)) as items:
                async for item, _base in items:
                    attachments.append(parse_attachment(item, page_id=page_id))
        except _ListingRefused as refused:
            if refused.reply.response.status_code in (403, 404):
                raise ContentNotFound(
                    f"Page {page_id} does not exist at {self.api_base} or "
                    f"{self.auth.identity} may not read its attachments.",
                    details={"page_id": page_id},
                ) from None
            raise self._listing_error(refused.reply) from None
        return attachments

    async def download_attachment(
        self, attachment: Attachment, *, max_bytes: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The attachment's bytes, streamed. AttachmentTooLarge as soon as the cap is passed.

        A connection that breaks mid-stream is retried like any dropped response: the download
        starts over and the bytes the caller already has are skipped, so it gets each byte once
        (``download_path`` names the version, so the bytes are the same).
        """
        cap = self.settings.max_attachment_bytes if max_bytes is None else max_bytes
        if attachment.file_size is not None and attachment.file_size > cap:
            raise _too_large(attachment, cap)
        url = resolve_link(self.api_base, attachment.download_path)
        received = 0
        broken = 0
        async with self.limiter.slot():
            while True:
                reply = await self._session.open_stream(url)
                if reply.status != 200:
                    raise self._download_error(reply, attachment)
                response = reply.response
                try:
                    length = response.headers.get("Content-Length", "")
                    if length.isdigit() and int(length) > cap:
                        raise _too_large(attachment, cap)
                    skip = received
                    try:
                        async for chunk in response.aiter_bytes():
                            if skip:
                                dropped = min(skip, len(chunk))
                                chunk, skip = chunk[dropped:], skip - dropped
                                if not chunk:
                                    continue
                            received += len(chunk)
                            if received > cap:
                                raise _too_large(attachment, cap)
                            yield chunk
                    except httpx.TransportError as error:
                        reason = RetryReason.DROPPED
                        await self._session.before_retry(url, reason, None, broken, error)
                        broken += 1
                        continue
                    if skip:
                        raise UnexpectedResponse(
                            f"Attachment {attachment.title!r} came back shorter on a retry than "
                            "before; it may have changed during the download: try again.",
                            details={"attachment_id": attachment.id},
                        )
                    return
                finally:
                    await response.aclose()

    async def user_names(
        self, ids: Iterable[str], *, usernames: Iterable[str] = ()
    ) -> dict[str, str]:
        """Display names by user id, for mentions: ``ids`` are account ids on Cloud (looked up
        in bulk) or user keys on Data Center, where ``usernames`` can be looked up too (one
        request each, concurrently). Unknown users are simply absent; so is everyone once the
        site refuses user lookups (403, logged once). Other failures raise as for any call
        (AuthenticationFailed, RetryBudgetExhausted, ConfluenceUnreachable, UnexpectedResponse).
        """
        return await self._users.names(ids, usernames)

    @property
    def user_lookup_denied(self) -> bool:
        """True once the site refused a user lookup (403): ``user_names`` then answers ``{}``."""
        return self._users.denied

    def _download_error(self, reply: Reply, attachment: Attachment) -> ConfluenceError:
        self._raise_for_auth(reply)
        if reply.status in (403, 404):
            return ContentNotFound(
                f"Attachment {attachment.id} ({attachment.title!r}) does not exist at "
                f"{self.api_base} or {self.auth.identity} may not read it.",
                details={"attachment_id": attachment.id},
            )
        return self._unexpected(reply, f"downloading attachment {attachment.id}")

    # ------------------------------------------------------------------ listing machinery

    async def _search(
        self, query: str, *, expand: str, limit: int, prefetch: bool = True
    ) -> AsyncGenerator[tuple[Mapping[str, Any], str], None]:
        url = f"{self.api_base}/rest/api/content/search?" + urlencode(
            {"cql": query, "limit": limit, "expand": expand}
        )
        try:
            walk = self._walk(url, shrinkable=bool(expand), prefetch=prefetch)
            async with aclosing(walk) as items:
                async for item in items:
                    yield item
        except _ListingRefused as refused:
            raise self._listing_error(refused.reply, query) from None

    async def _walk(
        self, first_url: str, *, shrinkable: bool, prefetch: bool
    ) -> AsyncGenerator[tuple[Mapping[str, Any], str], None]:
        """Yield ``(item, base)`` for every item of a paginated listing, each id once."""
        governor = LimitGovernor(int_param(first_url, "limit") or BODY_LIMIT)

        def shrink(sent_url: str) -> str | None:
            if not shrinkable:
                return None
            smaller = governor.shrink(int_param(sent_url, "limit"))
            if smaller is None:
                return None
            self.stats.limit_reductions += 1
            logger.warning("listing timed out (504): asking for %d results per page", smaller)
            return with_params(sent_url, limit=smaller)

        async def fetch(url: str) -> tuple[Reply, ListingPage]:
            reply = await self._session.get_json(url, shrink=shrink)
            if reply.response.status_code != 200:
                raise _ListingRefused(reply)
            return reply, parse_listing(self._json(reply))

        seen: set[str] = set()
        stale = 0
        task: asyncio.Task[tuple[Reply, ListingPage]] | None = None
        url: str | None = first_url
        try:
            task = asyncio.ensure_future(fetch(first_url))
            while task is not None:
                reply, listing = await task
                task = None
                governor.note_response(int_param(reply.url, "limit"), listing.limit)
                base = (listing.base or self.api_base).rstrip("/")
                decision = next_page_url(
                    sent_url=reply.url,
                    next_url=resolve_link(base, listing.next_link) if listing.next_link else None,
                    received=len(listing.results),
                    limit=governor.limit_for_next(),
                )
                if decision.corrected_start is not None:
                    self.stats.offset_corrections += 1
                    logger.warning(
                        "server's next link would re-read or skip results: continuing at start=%d",
                        decision.corrected_start,
                    )
                url = decision.url
                if url is not None and prefetch:
                    task = asyncio.ensure_future(fetch(url))
                fresh = [item for item in listing.results if str(item.get("id")) not in seen]
                self.stats.duplicates_skipped += len(listing.results) - len(fresh)
                stale = 0 if fresh else stale + 1
                if stale >= MAX_STALE_PAGES:
                    raise UnexpectedResponse(
                        f"{self.api_base} keeps returning results already listed: pagination "
                        "is not advancing, so the listing stopped instead of looping."
                    )
                for item in fresh:
                    seen.add(str(item.get("id")))
                    yield item, base
                if url is not None and not prefetch:
                    task = asyncio.ensure_future(fetch(url))
        finally:
            # the caller stopped early, or something failed: end the prefetch in flight, and
            # collect its outcome so no failure is left unretrieved
            if task is not None:
                task.cancel()
                await asyncio.wait([task])
                if not task.cancelled():
                    task.exception()

    # ------------------------------------------------------------------ errors

    def _raise_for_auth(self, reply: Reply) -> None:
        if reply.response.status_code == 401:
            raise AuthenticationFailed(
                f"Confluence rejected the credentials for {self.auth.identity} at "
                f"{self.api_base}: {self.auth.hint}.",
                details={"site": self.api_base},
            )

    def _reply_error(self, reply: Reply, doing: str) -> ConfluenceError:
        self._raise_for_auth(reply)
        return self._unexpected(reply, doing)

    def _listing_error(self, reply: Reply, query: str | None = None) -> ConfluenceError:
        self._raise_for_auth(reply)
        status = reply.response.status_code
        if status == 400 and query is not None:
            return InvalidCQL(
                f"Confluence at {self.api_base} refused the query {query!r}: "
                f"{server_message(reply.response)}",
                details={"cql": query},
            )
        if status == 403:
            return SpaceAccessDenied(
                f"{self.auth.identity} may not search {self.api_base}: "
                f"{server_message(reply.response)}",
                details={"site": self.api_base},
            )
        if status == 404 and not_an_api(reply.response):
            return self._no_api_here(reply)
        return self._unexpected(reply, "listing content")

    def _no_api_here(self, reply: Reply) -> UnexpectedResponse:
        return UnexpectedResponse(
            f"There is no Confluence REST API at {self.api_base} ({short(reply.url)} answered "
            f"404): {_CONTEXT_HINT}.",
            details={"site": self.api_base},
        )

    def _unexpected(self, reply: Reply, doing: str) -> UnexpectedResponse:
        status = reply.response.status_code
        location = reply.response.headers.get("Location")
        if 300 <= status < 400 and location:
            # API calls are never redirected by Confluence itself: a proxy, a login page or
            # http -> https is in the way. The target is shown without its query string.
            return UnexpectedResponse(
                f"{self.api_base} redirects API calls to {location.split('?')[0]} while "
                f"{doing}: {_CONTEXT_HINT}, and whether it should start with https://.",
                details={"site": self.api_base, "status": status},
            )
        return UnexpectedResponse(
            f"Confluence at {self.api_base} answered {status} while {doing}: "
            f"{server_message(reply.response)}",
            details={"site": self.api_base, "status": status},
        )

    def _json(self, reply: Reply) -> Any:
        if reply.payload is None:
            raise UnexpectedResponse(f"{self.api_base} answered {short(reply.url)} without JSON")
        return reply.payload


class _ListingRefused(Exception):
    """Internal: a listing request ended in a non-retryable status; mapped by the caller."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.response.status_code)
        self.reply = reply


def _too_large(attachment: Attachment, cap: int) -> AttachmentTooLarge:
    return AttachmentTooLarge(
        f"Attachment {attachment.title!r} ({attachment.id}) is larger than the "
        f"{cap:,}-byte cap (max_attachment_bytes); it was skipped.",
        details={"attachment_id": attachment.id, "max_bytes": cap},
    )
