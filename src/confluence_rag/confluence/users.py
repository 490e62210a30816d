"""Display names of users, by the ids that mentions carry (``ri:user`` in storage XHTML).

Cloud names users by account id and answers many at once (``/rest/api/user/bulk``, the first
100 ids of a request; we send 50 so the URL stays a few KB). Data Center names them by user key
or username and answers one at a time (``/rest/api/user?key=`` / ``?username=``), so those go
concurrently, as many at once as the site limiter allows.

Missing names are not errors: a user that does not exist (any more) is simply absent from the
answer, and so is everyone when the site refuses user lookups (403: some sites keep their people
directory from API users). That refusal is remembered for the life of the client and logged
once, with what it costs and how to fix it, so a crawl neither fails nor asks again per page.
Everything else (credentials, retries spent, a nonsense answer) raises like any other call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlencode

from confluence_rag.confluence.auth import SiteAuth
from confluence_rag.confluence.parse import parse_listing, parse_user_name
from confluence_rag.confluence.session import Reply, SiteSession
from confluence_rag.errors import ConfluenceError, UnexpectedResponse

logger = logging.getLogger("confluence_rag.confluence")

BULK_BATCH = 50
# An id longer than this is not a Confluence user id (account ids are <= 128 characters);
# skipping it keeps a hostile page from making us send absurd URLs.
MAX_ID_LENGTH = 128

ErrorFor = Callable[[Reply, str], ConfluenceError]


class UserLookup:
    """Name lookups for one site; ``error_for(reply, doing)`` maps a refusal the way the client
    maps every other one (401 -> AuthenticationFailed, ...)."""

    def __init__(
        self,
        session: SiteSession,
        api_base: str,
        auth: SiteAuth,
        error_for: ErrorFor,
    ) -> None:
        self._session = session
        self._api_base = api_base
        self._auth = auth
        self._error_for = error_for
        self.denied = False

    async def names(self, ids: Iterable[str], usernames: Iterable[str] = ()) -> dict[str, str]:
        """``{id: display name}`` for every id the site knows; see the module docstring."""
        wanted = _clean(ids)
        if self._auth.flavour == "cloud":
            # Cloud has no usernames any more (privacy): only account ids can be looked up
            lookups = [("accountId", batch) for batch in _batches(wanted, BULK_BATCH)]
        else:
            lookups = [("key", [key]) for key in wanted]
            lookups += [("username", [name]) for name in _clean(usernames)]
        found: dict[str, str] = {}
        if self.denied or not lookups:
            return found
        gate = asyncio.Semaphore(max(1, self._session.limiter.limit))

        async def one(kind: str, batch: list[str]) -> None:
            async with gate:
                if self.denied:
                    return
                if kind == "accountId":
                    found.update(await self._bulk(batch))
                else:
                    name = await self._single(kind, batch[0])
                    if name is not None:
                        found[batch[0]] = name

        tasks = [asyncio.ensure_future(one(kind, batch)) for kind, batch in lookups]
        try:
            await asyncio.gather(*tasks)
        finally:
            # one lookup failed (or the caller gave up): stop the others instead of orphaning
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return found

    async def _bulk(self, account_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        pending = account_ids
        while pending and not self.denied:
            params = [("accountId", i) for i in pending] + [("limit", str(len(pending)))]
            reply = await self._session.get_json(
                f"{self._api_base}/rest/api/user/bulk?{urlencode(params)}"
            )
            if reply.status != 200:
                self._refused(reply, "looking up users")
                return found
            listing = parse_listing(reply.payload)
            asked = set(pending)
            for item in listing.results:
                account = item.get("accountId")
                name = parse_user_name(item)
                if isinstance(account, str) and account in asked and name:
                    found[account] = name
            # The server looks at only the first ``limit`` ids and drops the rest silently: ask
            # again for those it never looked at (ids it did look at and left out are unknown).
            looked_at = listing.limit or len(pending)
            if looked_at < 1:
                raise UnexpectedResponse(
                    f"{self._api_base} answered a user lookup with limit {looked_at}"
                )
            pending = pending[looked_at:]
        return found

    async def _single(self, kind: str, value: str) -> str | None:
        url = f"{self._api_base}/rest/api/user?{urlencode({kind: value})}"
        reply = await self._session.get_json(url)
        if reply.status == 200:
            if not isinstance(reply.payload, Mapping):
                raise UnexpectedResponse(f"{self._api_base} answered a user lookup without JSON")
            return parse_user_name(reply.payload)
        if reply.status == 404:
            return None
        self._refused(reply, f"looking up user {kind}={value}")
        return None

    def _refused(self, reply: Reply, doing: str) -> None:
        """A 403 turns lookups off for this client (logged once); anything else raises."""
        if reply.status != 403:
            raise self._error_for(reply, doing)
        if not self.denied:
            self.denied = True
            logger.warning(
                "%s does not let %s look users up (403): mentions keep their user ids instead "
                "of names. Allow this account to view user profiles to get names on the next "
                "crawl.",
                self._api_base,
                self._auth.identity,
            )


def _clean(ids: Iterable[str]) -> list[str]:
    """Distinct, stripped, plausible ids, in first-seen order."""
    cleaned = (str(i).strip() for i in ids)
    return list(dict.fromkeys(i for i in cleaned if i and len(i) <= MAX_ID_LENGTH))


def _batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
