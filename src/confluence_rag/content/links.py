"""``ac:link`` and ``ac:image``: resource identifiers (``ri:*``) -> readable text and URLs.

Storage format names a link's target (a page title, a file name, an account id) and often
leaves the link text empty, letting Confluence render the title. A converter that ignores
``ri:`` elements therefore loses the link *and* its words. Here every target gets the text a
reader would see (page title, file name, ``@user``, space name) and a URL built from the
context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from confluence_rag.content.context import ConversionContext
from confluence_rag.content.tree import Element
from confluence_rag.content.xhtml import escape_markup, safe_url

if TYPE_CHECKING:
    from confluence_rag.content.converter import ParentTags, StorageConverter

_BLOCK_PARENTS = frozenset(
    "[document] ac:rich-text-body ac:layout-cell ac:adf-content ac:adf-fallback div section "
    "body blockquote".split()
)


def _attr(el: Element, name: str) -> str:
    return " ".join(str(el.get(name) or "").split())


def _resource(el: Element) -> Element | None:
    for child in el.contents:
        if isinstance(child, Element) and child.name.startswith("ri:"):
            return child
    return None


def link_text(text: str) -> str:
    """Plain text made safe inside ``[...]``."""
    text = " ".join(text.split())
    return escape_markup(text.replace("[", "\\[").replace("]", "\\]"))


def resolve(ctx: ConversionContext, resource: Element) -> tuple[str, str]:
    """(text a reader sees, URL) for one ``ri:`` element; either may be empty."""
    kind = resource.name
    if kind in ("ri:page", "ri:content-entity"):
        title = _attr(resource, "ri:content-title")
        content_id = _attr(resource, "ri:content-id")
        if not title and content_id:
            title = ctx.page_titles.get(content_id, "")
        if title:
            return title, ctx.page_url(_attr(resource, "ri:space-key") or None, title)
        return "", ctx.page_url_by_id(content_id) if content_id else ""
    if kind == "ri:blog-post":
        title = _attr(resource, "ri:content-title")
        space = _attr(resource, "ri:space-key") or None
        day = _attr(resource, "ri:posting-day")
        return title, ctx.blog_post_url(space, title, day) if title else ""
    if kind == "ri:attachment":
        return _attachment(ctx, resource)
    if kind == "ri:user":
        return _user(ctx, resource)
    if kind == "ri:space":
        key = _attr(resource, "ri:space-key")
        return ctx.space_names.get(key, key), ctx.space_url(key) if key else ""
    if kind == "ri:url":
        url = _attr(resource, "ri:value")
        return url, url
    if kind == "ri:shortcut":
        return _attr(resource, "ri:parameter"), ""
    return "", ""


def _attachment(ctx: ConversionContext, resource: Element) -> tuple[str, str]:
    filename = _attr(resource, "ri:filename")
    if not filename:
        return "", ""
    owner = _resource(resource)  # an attachment of another page names that page inside
    if owner is None:
        return filename, ctx.attachment_url(filename)
    owner_id = _attr(owner, "ri:content-id")
    if owner_id:
        return filename, ctx.attachment_url(filename, owner_id)
    _, owner_url = resolve(ctx, owner)
    return filename, owner_url


def _user(ctx: ConversionContext, resource: Element) -> tuple[str, str]:
    account_id = _attr(resource, "ri:account-id")
    user_key = _attr(resource, "ri:userkey")
    username = _attr(resource, "ri:username")
    ident = account_id or user_key or username
    if not ident:
        return "", ""
    name = ctx.user_names.get(ident) or username or ident
    url = ctx.user_url(account_id=account_id, user_key=user_key, username=username)
    return f"@{name}", url


def link(conv: StorageConverter, el: Element, parent_tags: ParentTags) -> str:
    """``ac:link`` -> ``[text](url)``; text from the link body, else from the target."""
    resource = _resource(el)
    default, url = resolve(conv.ctx, resource) if resource is not None else ("", "")
    anchor = _attr(el, "ac:anchor")
    if anchor:
        default = default or anchor
        # An anchor on this page has no URL worth keeping out of context; the text stays.
        url = f"{url}#{quote(anchor)}" if url else ""
    label = ""
    for child in el.contents:
        if not isinstance(child, Element):
            continue
        if child.name == "ac:link-body":
            label = conv.inline_text(child, parent_tags | {"a"})
        elif child.name == "ac:plain-text-link-body":
            label = link_text(child.get_text())
        if label:
            break
    label = label or link_text(default)
    if not label:
        return ""
    if not url or "_noformat" in parent_tags:
        return label
    return f"[{label}]({safe_url(url)})"


def image(conv: StorageConverter, el: Element, parent_tags: ParentTags) -> str:
    """``ac:image`` -> ``![alt](url)`` with the caption, if any, on the next line."""
    resource = _resource(el)
    url, name = "", ""
    if resource is not None:
        if resource.name == "ri:attachment":
            name, url = _attachment(conv.ctx, resource)
            # Without the page id the file name is still the best reference there is.
            url = url or name
        elif resource.name == "ri:url":
            url = _attr(resource, "ri:value")
    caption_tag = next(
        (c for c in el.contents if isinstance(c, Element) and c.name == "ac:caption"), None
    )
    caption = conv.inline_text(caption_tag, parent_tags) if caption_tag is not None else ""
    alt = link_text(_attr(el, "ac:alt") or _attr(el, "ac:title") or caption or name)
    text = f"![{alt}]({safe_url(url)})" if url else alt
    if caption and caption != alt:
        text += (
            f" {caption}" if "td" in parent_tags or "_inline" in parent_tags else f"\n*{caption}*"
        )
    if el.parent is not None and el.parent.name in _BLOCK_PARENTS:
        return f"\n\n{text}\n\n"
    return text
