"""What the converter may know about the site around a page, so links can point somewhere.

Storage format names its targets, not their URLs: ``<ri:page ri:content-title="Setup"/>``,
``<ri:user ri:account-id="..."/>``. The context turns those names into links and readable text.
Everything but the base URL is optional; unknown targets still get sensible URLs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus


@dataclass(frozen=True, slots=True)
class ConversionContext:
    """Site facts for one conversion.

    - ``base_url``: the site's wiki base, e.g. ``https://x.atlassian.net/wiki`` (Cloud) or
      ``https://confluence.example.com`` (Data Center, with its context path).
    - ``space_key``: the page's own space; links without ``ri:space-key`` point into it.
    - ``page_id``: the page being converted; attachment links and images need it.
    - ``page_titles``: content id -> title, for links that name a page only by id.
    - ``page_urls``: (space key, title) -> absolute URL, when the crawler knows the real URL.
    - ``user_names``: account id / user key / username -> display name, for mentions.
    - ``space_names``: space key -> space name, for links to spaces.
    """

    base_url: str = ""
    space_key: str = ""
    page_id: str | None = None
    page_titles: Mapping[str, str] = field(default_factory=dict)
    page_urls: Mapping[tuple[str, str], str] = field(default_factory=dict)
    user_names: Mapping[str, str] = field(default_factory=dict)
    space_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.base_url.rstrip("/")

    def page_url(self, space_key: str | None, title: str) -> str:
        """The URL of a page named by title; ``/display/KEY/Title`` works on Cloud and DC."""
        space = space_key or self.space_key
        known = self.page_urls.get((space, title))
        if known:
            return known
        if not space:
            return ""
        return f"{self.base}/display/{quote(space, safe='')}/{quote_plus(title)}"

    def page_url_by_id(self, content_id: str) -> str:
        return f"{self.base}/pages/viewpage.action?pageId={quote(content_id, safe='')}"

    def blog_post_url(self, space_key: str | None, title: str, posting_day: str) -> str:
        space = space_key or self.space_key
        known = self.page_urls.get((space, title))
        if known:
            return known
        if not space:
            return ""
        day = posting_day.strip().replace("-", "/")
        middle = f"{quote(day)}/" if day else ""
        return f"{self.base}/display/{quote(space, safe='')}/{middle}{quote_plus(title)}"

    def attachment_url(self, filename: str, page_id: str | None = None) -> str:
        owner = page_id or self.page_id
        if not owner:
            return ""
        return f"{self.base}/download/attachments/{quote(owner, safe='')}/{quote(filename)}"

    def space_url(self, space_key: str) -> str:
        return f"{self.base}/display/{quote(space_key, safe='')}"

    def user_url(self, *, account_id: str = "", user_key: str = "", username: str = "") -> str:
        if account_id:
            return f"{self.base}/people/{quote(account_id, safe='')}"
        if username:
            return f"{self.base}/display/~{quote(username, safe='')}"
        if user_key:
            return f"{self.base}/users/viewuserprofile.action?userKey={quote(user_key, safe='')}"
        return ""
