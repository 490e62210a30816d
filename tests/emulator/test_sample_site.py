"""The sample site the emulator serves by default (``emulator/sample_site``) and the judged
queries over it (``bench/wiki_queries``): what the demo shows and what ``bench/wiki_eval.py``
measures, so both must hold what real Confluence spaces hold and stay consistent."""

from __future__ import annotations

import fnmatch
import logging
import re
import tomllib
from collections import Counter
from pathlib import Path

import httpx
import pytest
from bench.wiki_eval import KINDS, load_queries, site_pages

from confluence_rag.content.languages import normalise_language
from confluence_rag.content.storage import storage_to_markdown
from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, EmulatorServer, EmulatorState
from confluence_rag.emulator.loader import SAMPLE_SITE, load_site, site_config
from confluence_rag.emulator.records import ContentRecord, User
from confluence_rag.errors import InvalidInput

# What the converter handles, as it appears in storage: every one must be in the site.
STORAGE_FEATURES = {
    "code macro": 'ac:name="code"',
    "noformat": 'ac:name="noformat"',
    "info panel": 'ac:name="info"',
    "note panel": 'ac:name="note"',
    "tip panel": 'ac:name="tip"',
    "warning panel": 'ac:name="warning"',
    "expand": 'ac:name="expand"',
    "status": 'ac:name="status"',
    "Jira issue": 'ac:name="key"',
    "Jira JQL": 'ac:name="jqlQuery"',
    "include": 'ac:name="include"',
    "excerpt": 'ac:name="excerpt"',
    "excerpt-include": 'ac:name="excerpt-include"',
    "toc": 'ac:name="toc"',
    "layout": "<ac:layout>",
    "table": "<table>",
    "merged cells": "span=",
    "task list": "<ac:task-list>",
    "mention": "<ri:user ",
    "page link": "<ri:page ",
    "attachment link": "<ri:attachment ",
    "emoticon": "<ac:emoticon ",
    "date": "<time ",
}
_LANGUAGE = re.compile(
    r'ac:name="code">\s*(?:<ac:parameter ac:name="(?:title|linenumbers|theme)">[^<]*'
    r'</ac:parameter>\s*)*<ac:parameter ac:name="language">([^<]+)</ac:parameter>'
)
_PAGE_LINK = re.compile(r'<ri:page ri:content-title="([^"]+)"(?: ri:space-key="([^"]+)")?')


@pytest.fixture(scope="module")
def site() -> EmulatorState:
    return EmulatorState(site_config())


def _contents(site: EmulatorState) -> list[ContentRecord]:
    return list(site.contents.values())


def _depth(site: EmulatorState, record: ContentRecord) -> int:
    depth, parent = 0, record.parent_id
    while parent is not None:
        depth, parent = depth + 1, site.contents[parent].parent_id
    return depth


def test_two_spaces_of_pages_blog_posts_and_a_deep_tree(site: EmulatorState) -> None:
    contents = _contents(site)
    pages = [c for c in contents if c.type == "page"]
    posts = [c for c in contents if c.type == "blogpost"]
    assert sorted(site.spaces) == ["ENG", "OPS"]
    assert len(pages) >= 70 and len(posts) >= 6
    for key in site.spaces:
        assert sum(1 for c in pages if c.space_key == key) >= 25, f"space {key} is thin"
    # Home > section > page > sub-page > sub-sub-page: four levels below the home page.
    assert max(_depth(site, page) for page in pages) >= 4
    assert all(site.spaces[c.space_key].homepage_id for c in contents)


def test_titles_are_unique_and_pages_look_maintained(site: EmulatorState) -> None:
    contents = _contents(site)
    titles = Counter(c.title.casefold() for c in contents)
    assert [title for title, n in titles.items() if n > 1] == []
    assert len({c.updated_by for c in contents} | {c.created_by for c in contents}) >= 5
    assert sum(1 for c in contents if c.labels) >= 0.8 * len(contents)
    assert max(c.version for c in contents) >= 10 and min(c.version for c in contents) >= 1
    assert all(c.created_at <= c.updated_at for c in contents)
    assert len({c.updated_at.date() for c in contents}) >= 0.6 * len(contents)


def test_every_storage_feature_the_converter_handles_appears(site: EmulatorState) -> None:
    bodies = "\n".join(c.body for c in _contents(site))
    missing = [name for name, mark in STORAGE_FEATURES.items() if mark not in bodies]
    assert missing == []
    languages = {normalise_language(name) for name in _LANGUAGE.findall(bodies)}
    assert len(languages) >= 6, languages


def test_page_links_and_includes_name_pages_that_exist(site: EmulatorState) -> None:
    titles = {(c.space_key, c.title) for c in _contents(site)}
    broken = [
        (c.title, target, space or c.space_key)
        for c in _contents(site)
        for target, space in _PAGE_LINK.findall(c.body)
        if (space or c.space_key, target) not in titles
    ]
    assert broken == []


def test_every_page_converts_to_enough_text_without_falling_back(
    site: EmulatorState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="confluence_rag.content")
    for record in _contents(site):
        words = len(storage_to_markdown(record.body).split())
        assert words >= 60, f"{record.title!r} has only {words} words"
    assert caplog.records == [], "a sample page needed the plain-text fallback"


def test_the_judged_queries_cover_every_kind_and_name_real_pages() -> None:
    queries = load_queries()
    pages = site_pages()
    assert len(queries) >= 80
    kinds = Counter(query.kind for query in queries)
    assert kinds["paraphrase"] >= 30 and all(kinds[kind] >= 4 for kind in KINDS[:6]), kinds
    assert {p for q in queries for p in q.relevant} <= set(pages)
    assert all(grade in (1, 2) for q in queries for grade in q.relevant.values())
    assert len({query.text.casefold() for query in queries}) == len(queries)


def test_the_emulator_serves_the_site_with_its_spaces_and_authors() -> None:
    with (
        EmulatorServer(site_config()) as server,
        httpx.Client(
            base_url=server.api_base, auth=(DEMO_EMAIL, DEMO_API_TOKEN), timeout=30
        ) as client,
    ):
        space = client.get("/rest/api/space/OPS", params={"expand": "homepage"}).json()
        assert space["name"] == "Operations" and space["homepage"]["id"] == "300000"
        found = client.get(
            "/rest/api/content/search",
            params={"cql": "space = ENG and type = blogpost", "expand": "version"},
        ).json()
        assert found["size"] >= 1
        authors = {hit["version"]["by"]["displayName"] for hit in found["results"]}
        assert authors <= {user.display_name for user in server.state.users.values()}


def test_a_site_folder_with_a_broken_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "site.json").write_text('{"spaces": [{"key": "ENG", "name": "E"}]}')
    with pytest.raises(InvalidInput, match="has no folder"):
        load_site(tmp_path, {})
    (tmp_path / "ENG").mkdir()
    (tmp_path / "site.json").write_text(
        '{"spaces": [{"key": "ENG", "name": "E", "homepage": "1"}]}'
    )
    with pytest.raises(InvalidInput, match="homepage 1"):
        load_site(tmp_path, {})
    (tmp_path / "site.json").write_text("{}")
    with pytest.raises(InvalidInput, match="names no spaces"):
        load_site(tmp_path, {})


def test_every_site_file_is_in_the_package_data() -> None:
    # An installed (non-editable) copy has only what pyproject's package-data globs name.
    package = SAMPLE_SITE.parents[1]
    globs = tomllib.loads((package.parents[1] / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]["package-data"]["confluence_rag"]
    files = [path.relative_to(package).as_posix() for path in SAMPLE_SITE.rglob("*.json")]
    assert len(files) >= 78
    assert [f for f in files if not any(fnmatch.fnmatch(f, glob) for glob in globs)] == []
    users: dict[str, User] = {}
    assert [space.space.key for space in load_site(SAMPLE_SITE, users)] == ["ENG", "OPS"]
    assert len(users) >= 7
