"""The space generator: deterministic, fast, realistic (constructs, tree, lengths, statuses,
markers in code), and the loader of JSON page files."""

from __future__ import annotations

import json
import re
import shutil
import statistics
from pathlib import Path

import pytest
from lxml import etree

from confluence_rag.emulator import EmulatorConfig, EmulatorState, generate_space
from confluence_rag.emulator.bodies import cdata
from confluence_rag.errors import InvalidInput

NS = '<root xmlns:ac="http://atlassian.com/content" xmlns:ri="http://atlassian.com/resource">'


@pytest.fixture(scope="module")
def big() -> object:
    return generate_space(11, 4000)


def test_same_seed_same_space_other_seed_other_space() -> None:
    first, again, other = generate_space(5, 120), generate_space(5, 120), generate_space(6, 120)
    assert [(c.id, c.title, c.body, c.updated_at) for c in first.contents] == [
        (c.id, c.title, c.body, c.updated_at) for c in again.contents
    ]
    assert [a.data for a in first.attachments] == [a.data for a in again.attachments]
    assert [c.body for c in first.contents] != [c.body for c in other.contents]


def test_four_thousand_pages(big: object) -> None:
    # How fast is bench/emulator.py's to say.
    assert len(big.contents) == 4000  # type: ignore[attr-defined]


def test_length_distribution_is_wiki_like(big: object) -> None:
    space = big
    words = [len(re.sub(r"<[^>]+>", " ", c.body).split()) for c in space.contents]  # type: ignore[attr-defined]
    assert 450 <= statistics.median(words) <= 800
    assert 5000 <= max(words) <= 11_000
    assert sum(1 for c in space.contents if len(c.body) < 100) >= 40  # type: ignore[attr-defined]


def test_statuses_types_tree_and_labels(big: object) -> None:
    space = big
    contents = space.contents  # type: ignore[attr-defined]
    assert sum(c.status == "trashed" for c in contents) == 40
    assert sum(c.status == "archived" for c in contents) == 40
    blogs = [c for c in contents if c.type == "blogpost"]
    assert 200 < len(blogs) < 500 and all(c.parent_id is None for c in blogs)
    by_id = {c.id: c for c in contents}
    roots = [c for c in contents if c.type == "page" and c.parent_id is None]
    assert [r.id for r in roots] == [space.space.homepage_id]  # type: ignore[attr-defined]
    depths = []
    for page in contents:
        depth, node = 0, page
        while node.parent_id:
            node, depth = by_id[node.parent_id], depth + 1
        depths.append(depth)
    assert max(depths) >= 5
    assert len({c.created_by for c in contents}) >= 5
    assert len({label for c in contents for label in c.labels}) >= 15
    assert any(c.version > 5 for c in contents)
    assert all(c.updated_at >= c.created_at for c in contents)
    assert len({c.title for c in contents if c.type == "page"}) == sum(
        c.type == "page" for c in contents
    )


def test_bodies_hold_every_construct_and_parse_as_xml(big: object) -> None:
    space = big
    everything = "".join(c.body for c in space.contents[:600])  # type: ignore[attr-defined]
    for needle in (
        "<h1>", "<h2>", "<ul>", "<ol>", "<table>", 'ac:name="code"', "<![CDATA[",
        "]]]]><![CDATA[>", 'ac:name="info"', 'ac:name="note"', 'ac:name="warning"',
        'ac:name="tip"', 'ac:name="expand"', 'ac:name="status"', 'ac:name="jira"',
        "<ac:task-list>", "<ac:layout>", "<ri:page ri:content-title=", "ri:account-id=",
        "<ac:image", "<ri:attachment ri:filename=", "<ac:emoticon", "<time datetime=",
    ):  # fmt: skip
        assert needle in everything, needle
    languages = set(re.findall(r'ac:name="language">(\w+)<', everything))
    assert len(languages) >= 6
    for content in space.contents[:300]:  # type: ignore[attr-defined]
        etree.fromstring(f"{NS}{content.body}</root>".encode())  # well-formed storage XML


def test_markers_are_unique_and_inside_code(big: object) -> None:
    space = big
    markers = space.markers  # type: ignore[attr-defined]
    assert len(markers) > 3000 and len(set(markers.values())) == len(markers)
    everything = {c.id: c.body for c in space.contents}  # type: ignore[attr-defined]
    for page_id, marker in list(markers.items())[:200]:
        blocks = re.findall(r"<ac:plain-text-body><!\[CDATA\[(.*?)\]\]></ac:plain-text-body>",
                            everything[page_id], re.S)  # fmt: skip
        assert any(marker in block for block in blocks)
        assert sum(marker in body for body in everything.values()) == 1


def test_datacenter_bodies_mention_users_by_userkey() -> None:
    space = generate_space(2, 60, flavour="datacenter")
    text = "".join(c.body for c in space.contents)
    assert "ri:userkey=" in text and "ri:account-id=" not in text


def test_cdata_splits_the_terminator() -> None:
    assert cdata("a]]>b") == "<![CDATA[a]]]]><![CDATA[>b]]>"


def test_state_markers_and_attachments() -> None:
    state = EmulatorState(EmulatorConfig(pages=50))
    markers = state.markers("DEMO")
    assert markers and all(state.content(i).status == "current" for i in markers)
    assert all(state.content(a.container_id) for a in state.attachments.values())
    assert all(
        a.data.startswith(b"\x89PNG")
        for a in state.attachments.values()
        if a.media_type == "image/png"
    )


def test_load_pages_from_json_files(tmp_path: Path, shared_data: Path) -> None:
    recorded = shared_data / "confluence/api_responses"
    shutil.copy(recorded / "airbyte/page_98487_overview_expanded.json", tmp_path / "a.json")
    shutil.copy(recorded / "airbyte/blogpost_1343496_expanded.json", tmp_path / "b.json")
    child = {
        "id": "555",
        "type": "page",
        "title": "Child",
        "ancestors": [{"id": "98487"}],
        "metadata": {"labels": {"results": [{"name": "kept"}]}},
        "body": {"storage": {"value": "<p>child</p>", "representation": "storage"}},
    }
    (tmp_path / "c.json").write_text(json.dumps({"results": [child]}))
    state = EmulatorState(EmulatorConfig(pages_dir=tmp_path, extra_spaces={}))
    assert state.current_ids("DEMO") == {"98487", "1343496", "555"}
    page = state.content("98487")
    assert page.title == "Overview" and "<ac:layout>" in page.body
    assert page.version == 1 and page.updated_at.year == 2023
    assert state.users[page.created_by].display_name == "integration test"
    assert state.ancestor_ids(state.content("555")) == ["98487"]
    assert state.content("555").labels == ["kept"]
    assert state.content("1343496").type == "blogpost"


def test_bad_page_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidInput):
        EmulatorState(EmulatorConfig(pages_dir=tmp_path))
    (tmp_path / "bad.json").write_text(json.dumps({"title": "no id"}))
    with pytest.raises(InvalidInput):
        EmulatorState(EmulatorConfig(pages_dir=tmp_path))
    with pytest.raises(InvalidInput):
        EmulatorConfig(pages_dir=tmp_path / "missing")


@pytest.mark.parametrize(
    "kwargs",
    [{"flavour": "server"}, {"pages": -1}, {"timezone": "Mars/Olympus"}, {"latency_ms": -1},
     {"extra_spaces": {"DEMO": 3}}, {"space_key": "a b"}],
)  # fmt: skip
def test_bad_config_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        EmulatorConfig(**kwargs)  # type: ignore[arg-type]
