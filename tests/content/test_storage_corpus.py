"""Every real storage sample others wrote (../shared/data/confluence/storage_samples) converts
cleanly: no fallback, no markup or macro parameters in the text, every code macro a fenced
block with its language, every table row and every link text still there.

The checks read the input with their own small parser setup, not the converter's, so a bug in
the converter's input handling cannot hide itself.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bs4 import BeautifulSoup, Tag
from hypothesis import given, settings
from hypothesis import strategies as st

from confluence_rag.content.code_blocks import extract_code_blocks
from confluence_rag.content.languages import normalise_language
from confluence_rag.content.macros import DROPPED_MACROS
from confluence_rag.content.storage import ConversionContext, storage_to_markdown
from tests.content.markdown_checks import RAW_MARKUP, text_outside_code

CTX = ConversionContext(base_url="https://x.atlassian.net/wiki", space_key="DEV", page_id="42")
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
_WORD = re.compile(r"\w+")
# Parameters whose value is content and is shown on purpose.
_SHOWN_PARAMETERS = {
    "code": {"language", "title"},
    "noformat": {"title"},
    "info": {"title"},
    "note": {"title"},
    "tip": {"title"},
    "warning": {"title"},
    "panel": {"title"},
    "expand": {"title"},
    "status": {"title"},
    "jira": {"key", "jqlQuery", "jql", ""},
    "include": {"", "pageTitle"},
    "excerpt-include": {"", "pageTitle"},
    "eazy-math-inline": {"body"},
    "easy-math-block": {"body"},
}
_HIDDEN_ELEMENTS = {
    "ac:parameter",
    "ac:placeholder",
    "ac:task-id",
    "ac:task-uuid",
    "ac:task-status",
}


@dataclass
class Sample:
    name: str
    storage: str


def load_samples(root: Path) -> list[Sample]:
    base = root / "confluence" / "storage_samples"
    samples: list[Sample] = []
    cases = json.loads(
        (base / "atlaskit-editor-confluence-transformer" / "storage_cases.json").read_text()
    )
    for index, case in enumerate(cases["cases"]):
        samples.append(Sample(f"atlaskit[{index}] {case['name']}", case["storage"]))
    for pattern in ("md2conf/**/*.xml", "mark/**/*.html", "from_real_responses/*.xhtml"):
        for path in sorted(base.glob(pattern)):
            samples.append(Sample(str(path.relative_to(base)), path.read_text(encoding="utf-8")))
    return samples


@dataclass
class Converted:
    sample: Sample
    soup: BeautifulSoup
    markdown: str


@pytest.fixture(scope="module")
def converted(shared_data: Path) -> list[Converted]:
    samples = load_samples(shared_data)
    # atlaskit's 115 cases plus the md2conf, mark and real-response files.
    assert len([s for s in samples if s.name.startswith("atlaskit")]) == 115
    assert len(samples) > 200
    results = []
    for sample in samples:
        readable = _CDATA.sub(lambda m: html.escape(m.group(1), quote=False), sample.storage)
        soup = BeautifulSoup(readable, "html.parser")
        results.append(Converted(sample, soup, storage_to_markdown(sample.storage, CTX)))
    return results


def _failures(found: list[str]) -> str:
    return f"{len(found)} failures:\n" + "\n".join(found[:30])


def _macro_name(el: Tag) -> str:
    return str(el.get("ac:name") or el.get("name") or "").strip().lower()


def _suppressed(el: Tag) -> bool:
    """Inside something the converter rightly does not render (parameters, dropped macros)."""
    for parent in el.parents:
        if parent.name in _HIDDEN_ELEMENTS:
            return True
        if (
            parent.name in ("ac:structured-macro", "ac:macro")
            and _macro_name(parent) in DROPPED_MACROS
        ):
            return True
    return False


def _visible_words(el: Tag) -> list[str]:
    words: list[str] = []
    for text in el.find_all(string=True):
        parent = text.parent
        if parent is None or parent.name in _HIDDEN_ELEMENTS | {"script", "style"}:
            continue
        if any(p.name in _HIDDEN_ELEMENTS for p in text.parents):
            continue
        words.extend(_WORD.findall(str(text)))
    return words


def _is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(word in it for word in needle)


def _table_lines(markdown: str) -> Iterator[list[str]]:
    for line in markdown.split("\n"):
        stripped = line.lstrip(" >")
        if stripped.startswith("|"):
            yield _WORD.findall(stripped)


def test_no_sample_needs_the_plain_text_fallback(
    shared_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="confluence_rag.content.storage"):
        for sample in load_samples(shared_data):
            storage_to_markdown(sample.storage, CTX)
    assert "falling back" not in caplog.text


def test_no_confluence_markup_in_any_output(converted: list[Converted]) -> None:
    found = [c.sample.name for c in converted if RAW_MARKUP.search(text_outside_code(c.markdown))]
    assert not found, _failures(found)


def test_no_macro_parameters_or_ids_in_any_output(converted: list[Converted]) -> None:
    found: list[str] = []
    checked = 0
    for c in converted:
        without_parameters = re.sub(
            r"<ac:parameter\b.*?</ac:parameter>", " ", c.sample.storage, flags=re.DOTALL
        )
        for param in c.soup.find_all("ac:parameter"):
            macro = param.find_parent(["ac:structured-macro", "ac:macro"])
            macro_name = _macro_name(macro) if macro is not None else ""
            name = str(param.get("ac:name") or "")
            if name in _SHOWN_PARAMETERS.get(macro_name, set()):
                continue
            value = " ".join(param.get_text().split())
            for leaked in (value, name):
                # Only words that exist nowhere else in the page can be blamed on the parameter.
                if len(leaked) < 2 or leaked in without_parameters:
                    continue
                checked += 1
                if leaked in c.markdown:
                    found.append(f"{c.sample.name}: {macro_name}/{name} -> {leaked!r}")
        for macro in c.soup.find_all(["ac:structured-macro", "ac:macro"]):
            macro_id = str(macro.get("ac:macro-id") or "")
            if len(macro_id) > 4 and macro_id in c.markdown:
                found.append(f"{c.sample.name}: macro id {macro_id}")
    assert checked > 100  # the corpus really exercises this
    assert not found, _failures(found)


def _expected_code(text: str) -> str:
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def test_every_code_macro_is_a_fenced_block_with_its_language(converted: list[Converted]) -> None:
    found: list[str] = []
    checked = 0
    for c in converted:
        blocks = {(b.language, b.code) for b in extract_code_blocks(c.markdown)}
        for macro in c.soup.find_all(["ac:structured-macro", "ac:macro"]):
            name = _macro_name(macro)
            if name not in ("code", "noformat") or _suppressed(macro):
                continue
            body = macro.find("ac:plain-text-body")
            code = _expected_code(body.get_text() if body is not None else "")
            if not code:
                continue
            language = ""
            if name == "code":
                param = next(
                    (p for p in macro.find_all("ac:parameter", recursive=False)
                     if p.get("ac:name") == "language"),
                    None,
                )  # fmt: skip
                language = normalise_language(param.get_text() if param is not None else "")
            checked += 1
            if macro.find_parent(["td", "th"]) is not None:
                # A pipe-table cell holds one line: the code is inline there, line by line.
                if not all(line.strip() in c.markdown for line in code.split("\n")):
                    found.append(f"{c.sample.name}: code in a cell lost")
            elif (language, code) not in blocks:
                found.append(f"{c.sample.name}: no ```{language} block for {code[:40]!r}")
    assert checked >= 40
    assert not found, _failures(found)


def test_every_table_row_survives(converted: list[Converted]) -> None:
    found: list[str] = []
    checked = 0
    for c in converted:
        lines = list(_table_lines(c.markdown))
        for row in c.soup.find_all("tr"):
            table = row.find_parent("table")
            if table is None or table.find_parent("table") is not None or _suppressed(row):
                continue
            words = _visible_words(row)
            if not words:
                continue
            checked += 1
            if not any(_is_subsequence(words, line) for line in lines):
                found.append(f"{c.sample.name}: row {' '.join(words)[:60]!r}")
    assert checked >= 60
    assert not found, _failures(found)


def test_every_link_text_survives(converted: list[Converted]) -> None:
    found: list[str] = []
    checked = 0
    for c in converted:
        output_words = _WORD.findall(c.markdown)
        for link in c.soup.find_all(["ac:link", "a"]):
            if _suppressed(link):
                continue
            words = _visible_words(link)
            if not words and link.name == "ac:link":
                target = link.find(["ri:page", "ri:attachment", "ri:space", "ri:user"])
                if target is not None:
                    label = (
                        target.get("ri:content-title")
                        or target.get("ri:filename")
                        or target.get("ri:space-key")
                        or target.get("ri:username")
                        or target.get("ri:account-id")
                        or ""
                    )
                    words = _WORD.findall(str(label))
            if not words:
                continue
            checked += 1
            if not _is_subsequence(words, output_words):
                found.append(f"{c.sample.name}: link text {' '.join(words)!r}")
    assert checked >= 40
    assert not found, _failures(found)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_cut_and_spliced_real_samples_never_raise_or_leak_markup(
    shared_data: Path, data: st.DataObject
) -> None:
    # Real pages cut at arbitrary points (mid-tag, mid-CDATA, mid-entity) and glued together:
    # the malformed input a truncated API response or a broken editor would produce.
    samples = [s.storage for s in _cached_samples(shared_data) if len(s.storage) > 40]
    first = data.draw(st.sampled_from(samples))
    second = data.draw(st.sampled_from(samples))
    cut = data.draw(st.integers(0, len(first)))
    start = data.draw(st.integers(0, len(second)))
    page = first[:cut] + second[start:]
    markdown = storage_to_markdown(page, CTX)
    assert not RAW_MARKUP.search(text_outside_code(markdown))


_SAMPLE_CACHE: dict[Path, list[Sample]] = {}


def _cached_samples(root: Path) -> list[Sample]:
    if root not in _SAMPLE_CACHE:
        _SAMPLE_CACHE[root] = load_samples(root)
    return _SAMPLE_CACHE[root]
