"""REST JSON -> records, against real Confluence responses (../shared/data) and edge shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from confluence_rag.confluence.parse import (
    absolute_url,
    item_base,
    parse_attachment,
    parse_datetime,
    parse_listing,
    parse_page,
    parse_page_ref,
    parse_space,
    resolve_link,
)
from confluence_rag.errors import UnexpectedResponse


def load(shared_data: Path, name: str) -> Any:
    path = shared_data / "confluence" / "api_responses" / name
    return json.loads(path.read_text(encoding="utf-8"))


def test_real_cloud_page_with_history_and_storage_body(shared_data: Path) -> None:
    item = load(shared_data, "airbyte/page_98487_overview_expanded.json")
    # a list item: no _links.base of its own, the envelope's base is passed in
    page = parse_page(item, base="https://airbyteio.atlassian.net/wiki")
    assert page.id == "98487"
    assert page.type == "page"
    assert page.status == "current"
    assert page.title == "Overview"
    assert page.version == 1
    assert page.created_at == datetime(2023, 2, 17, 9, 8, 30, 734000, tzinfo=UTC)
    assert page.updated_at == datetime(2023, 2, 17, 9, 8, 30, 734000, tzinfo=UTC)
    assert page.author == "integration test"
    assert page.web_url == (
        "https://airbyteio.atlassian.net/wiki/spaces/~5fc9e78d2730d800760becc4/overview"
    )
    # space not expanded: the key comes from _expandable.space
    assert page.space_key == "~5fc9e78d2730d800760becc4"
    assert page.body_storage is not None and page.body_storage.startswith("<ac:layout>")
    assert page.labels == () and page.ancestors == () and page.parent_id is None


def test_real_page_without_any_base_derives_it_from_self(shared_data: Path) -> None:
    item = load(shared_data, "airbyte/blogpost_1343496_expanded.json")
    post = parse_page(item)
    assert post.type == "blogpost"
    assert post.web_url.startswith("https://airbyteio.atlassian.net/wiki/spaces/~5fc9")
    assert post.web_url.endswith("/blog/2023/03/06/1343496/Blog+post+integration+tests")
    assert post.created_at == datetime(2023, 3, 6, 15, 54, 14, 990000, tzinfo=UTC)
    assert post.updated_at == datetime(2023, 3, 6, 15, 54, 15, 290000, tzinfo=UTC)
    assert post.body_storage and "Lorem Ipsum" in post.body_storage


def test_real_page_with_own_base_and_expanded_space(shared_data: Path) -> None:
    item = load(shared_data, "mcp-atlassian/mock_page_response.json")
    page = parse_page(item, base="https://elsewhere.example/ignored")
    # the item's own _links.base wins over the envelope's
    assert page.web_url == (
        "https://example.atlassian.net/wiki/spaces/PROJ/pages/987654321/Example+Meeting+Notes"
    )
    assert page.space_key == "PROJ"
    assert page.author == "Example User (Unlicensed)"  # no history: version.by
    assert page.updated_at == datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    assert page.created_at is None


def test_items_without_version_are_refused_for_listings(shared_data: Path) -> None:
    items = load(shared_data, "mcp-atlassian/mock_pages_from_space_response.json")
    with pytest.raises(UnexpectedResponse, match="version"):
        parse_page(items[0], base="https://example.atlassian.net/wiki")
    with pytest.raises(UnexpectedResponse, match="version"):
        parse_page_ref(items[1])


def test_real_search_envelope_and_space_listing(shared_data: Path) -> None:
    listing = parse_listing(load(shared_data, "mcp-atlassian/mock_spaces_response.json"))
    assert len(listing.results) == 2
    assert listing.base == "https://example.atlassian.net/wiki"
    assert listing.next_link == "/rest/api/space?next=true&limit=5&start=5"
    assert (listing.start, listing.limit) == (0, 5)
    spaces = [parse_space(item, base=listing.base) for item in listing.results]
    assert [s.key for s in spaces] == ["~user1", "PROJ"]
    assert spaces[1].web_url == "https://example.atlassian.net/wiki/spaces/PROJ"
    assert spaces[1].homepage_id == "22222223"
    assert spaces[0].status == "archived" and spaces[0].type == "personal"

    search = parse_listing(load(shared_data, "mcp-atlassian/mock_cql_search_response.json"))
    assert search.next_link is None  # last page
    assert search.base == "https://example.atlassian.net/wiki"


def test_real_space_with_int_id(shared_data: Path) -> None:
    space = parse_space(load(shared_data, "airbyte/space_AIRBYTE_expanded_truncated.json"))
    assert (space.id, space.key, space.name) == ("196612", "AIRBYTE", "Airbyte")


def test_attachment_stubs_without_download_link_are_refused(shared_data: Path) -> None:
    item = load(shared_data, "mcp-atlassian/mock_page_response.json")
    stub = item["children"]["attachment"]["results"][0]
    with pytest.raises(UnexpectedResponse, match="download link"):
        parse_attachment(stub, page_id="987654321")


CLOUD_ATTACHMENT = {
    "id": "att105348",
    "type": "attachment",
    "status": "current",
    "title": "diagram.svg",
    "version": {"number": 3},
    "extensions": {"mediaType": "image/svg+xml", "fileSize": 1098, "comment": ""},
    "_links": {"download": "/download/attachments/987654321/diagram.svg?version=3&api=v2"},
}
DC_ATTACHMENT = {
    "id": "att77",
    "type": "attachment",
    "title": "report.pdf",
    "metadata": {"mediaType": "application/pdf"},
    "extensions": {"fileSize": "2048"},
    "_links": {"download": "/download/attachments/77/report.pdf?version=1"},
}


@pytest.mark.parametrize(
    ("item", "media", "size", "version"),
    [(CLOUD_ATTACHMENT, "image/svg+xml", 1098, 3), (DC_ATTACHMENT, "application/pdf", 2048, 1)],
)
def test_attachments_cloud_and_datacenter(
    item: dict[str, Any], media: str, size: int, version: int
) -> None:
    attachment = parse_attachment(item, page_id="1")
    assert (attachment.media_type, attachment.file_size, attachment.version) == (
        media,
        size,
        version,
    )
    assert attachment.download_path.startswith("/download/attachments/")


DC_PAGE = {
    "id": "65601",
    "type": "page",
    "status": "current",
    "title": "Child",
    "space": {"key": "DEV", "name": "Development"},
    "history": {
        "createdBy": {"type": "known", "username": "jdoe", "userKey": "8a7f", "displayName": ""},
        "createdDate": "2024-03-10T23:30:00.000+01:00",
    },
    "version": {"number": 4, "when": "2024-03-11T08:00:00.000+01:00", "by": {"username": "x"}},
    "ancestors": [{"id": "100", "title": "Root"}, {"id": 200, "title": "Parent"}, {"title": "?"}],
    "metadata": {
        "labels": {"results": [{"prefix": "global", "name": "how-to"}, {"name": "how-to"},
                               {"name": "ops"}]}
    },
    "body": {"storage": {"value": "<p>x</p>", "representation": "storage"}},
    "_links": {"webui": "/display/DEV/Child", "self": "https://dc.example/confluence/rest/api/content/65601"},
}  # fmt: skip


def test_datacenter_page_with_offsets_ancestors_and_labels() -> None:
    page = parse_page(DC_PAGE, base="https://dc.example/confluence/")
    assert page.web_url == "https://dc.example/confluence/display/DEV/Child"
    assert page.created_at == datetime(2024, 3, 10, 22, 30, tzinfo=UTC)
    assert page.created_at.utcoffset() == timedelta(hours=1)
    assert page.author == "jdoe"  # empty displayName falls through to the username
    assert [(a.id, a.title) for a in page.ancestors] == [("100", "Root"), ("200", "Parent")]
    assert page.parent_id == "200"
    assert page.labels == ("how-to", "ops")
    assert page.body_storage == "<p>x</p>"
    assert parse_page_ref(DC_PAGE).version == 4


@pytest.mark.parametrize(
    "item",
    [
        {"type": "page", "version": {"number": 1}},
        {"id": "", "type": "page", "version": {"number": 1}},
        {"id": True, "type": "page", "version": {"number": 1}},
        {"id": "1", "type": "comment", "version": {"number": 1}},
        {"id": "1", "type": "page", "version": {"number": 0}},
        {"id": "1", "type": "page", "version": {"number": "2"}},
    ],
)
def test_incomplete_content_is_an_unexpected_response(item: dict[str, Any]) -> None:
    with pytest.raises(UnexpectedResponse):
        parse_page(item, base="https://x.example")


@pytest.mark.parametrize(
    "payload",
    [[], "text", None, {"size": 0}, {"results": "no"}, {"results": [1, 2]}],
)
def test_malformed_envelopes(payload: object) -> None:
    with pytest.raises(UnexpectedResponse):
        parse_listing(payload)


def test_envelope_without_links_has_no_next() -> None:
    listing = parse_listing({"results": [], "_links": {"next": ""}})
    assert listing.next_link is None and listing.base is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-02-17T09:08:30.734Z", datetime(2023, 2, 17, 9, 8, 30, 734000, tzinfo=UTC)),
        (
            "2024-03-10T23:30:00.000+01:00",
            datetime(2024, 3, 10, 23, 30, tzinfo=timezone(timedelta(hours=1))),
        ),
        ("2024-03-10T23:30:00", datetime(2024, 3, 10, 23, 30, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (12345, None),
    ],
)
def test_parse_datetime(value: object, expected: datetime | None) -> None:
    assert parse_datetime(value) == expected


@pytest.mark.parametrize(
    ("base", "link", "expected"),
    [
        ("https://h/wiki", "/rest/api/content/search?start=25", "https://h/wiki/rest/api/content/search?start=25"),
        ("https://h/wiki/", "rest/api/x", "https://h/wiki/rest/api/x"),
        ("https://h", "/rest/api/x?a=1", "https://h/rest/api/x?a=1"),
        ("https://h/confluence", "/confluence/rest/api/x", "https://h/confluence/rest/api/x"),
        ("https://h/wiki", "https://media.example/file?token=1", "https://media.example/file?token=1"),
    ],
)  # fmt: skip
def test_resolve_link_is_relative_to_base(base: str, link: str, expected: str) -> None:
    assert resolve_link(base, link) == expected


def test_absolute_url_and_item_base() -> None:
    assert absolute_url("https://h/wiki", "/spaces/X") == "https://h/wiki/spaces/X"
    assert absolute_url(None, "/spaces/X") == ""
    assert absolute_url("https://h", None) == ""
    assert absolute_url(None, "https://abs/x") == "https://abs/x"
    assert item_base({"_links": {"base": "https://own/"}}, "https://env") == "https://own"
    assert item_base({}, None) is None
