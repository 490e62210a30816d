"""Malformed storage keeps every text node it can recover, in the place a reader expects it.

Real pages (old imports, third-party apps, storage hand-edited through the API) leave macros,
bodies and CDATA sections unclosed, put text where the format has none, and get cut off. A word
a reader sees in the page (or in the raw storage) must reach the Markdown: after a macro left
open it comes back as prose, not swallowed by the macro; configuration stays hidden either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from confluence_rag.content import xhtml
from confluence_rag.content.code_blocks import extract_code_blocks
from confluence_rag.content.storage import ConversionContext, storage_to_markdown
from confluence_rag.content.tree import Element
from tests.content.markdown_checks import RAW_MARKUP, conversion_cpu_seconds, text_outside_code

CTX = ConversionContext(base_url="https://x.atlassian.net/wiki", space_key="DEV", page_id="7")

CODE = '<ac:structured-macro ac:name="code">'
INFO = '<ac:structured-macro ac:name="info">'
STATUS = '<ac:structured-macro ac:name="status">'
PYTHON = '<ac:parameter ac:name="language">python</ac:parameter>'
THEME = '<ac:parameter ac:name="theme">Midnight</ac:parameter>'


@dataclass(frozen=True)
class Broken:
    storage: str
    prose: tuple[str, ...] = ()  # in the text outside code blocks
    code: tuple[str, ...] = ()  # inside a code block
    hidden: tuple[str, ...] = ()  # configuration: nowhere in the Markdown


BROKEN: dict[str, Broken] = {
    # --- macros and bodies left open ----------------------------------------------------------
    "code macro never closed": Broken(
        CODE + PYTHON + THEME + "<ac:plain-text-body><![CDATA[x = 1]]></ac:plain-text-body>"
        "<p>tail text</p><h2>Next heading</h2>",
        prose=("tail text", "## Next heading"),
        code=("x = 1",),
        hidden=("Midnight",),
    ),
    "code body and macro never closed": Broken(
        CODE + "<ac:plain-text-body><![CDATA[x = 1]]><p>tail text</p>",
        prose=("tail text",),
        code=("x = 1",),
    ),
    "code body never closed, macro closed": Broken(
        CODE + "<ac:plain-text-body><![CDATA[x = 1]]></ac:structured-macro><p>tail text</p>",
        prose=("tail text",),
        code=("x = 1",),
    ),
    "CDATA never terminated, its body then closed": Broken(
        CODE + "<ac:plain-text-body><![CDATA[x = 1</ac:plain-text-body></ac:structured-macro>"
        "<p>tail text</p>",
        prose=("tail text",),
        code=("x = 1",),
    ),
    # Nothing marks where the code ends: an XML reader takes the rest as the section's text.
    "CDATA never terminated and nothing closed": Broken(
        CODE + "<ac:plain-text-body><![CDATA[Unclosed<p>tail text</p>",
        code=("Unclosed<p>tail text</p>",),
    ),
    "CDATA terminator lost before the next section": Broken(
        '<p><ac:link><ri:page ri:content-title="T"/><ac:plain-text-link-body><![CDATA[label'
        "</ac:plain-text-link-body></ac:link></p>" + CODE + THEME + "<ac:plain-text-body>"
        "<![CDATA[x = 1]]></ac:plain-text-body></ac:structured-macro>",
        prose=("[label](",),
        code=("x = 1",),
        hidden=("Midnight",),
    ),
    "legacy macro never closed": Broken(
        '<ac:macro ac:name="code"><ac:plain-text-body><![CDATA[int x;]]></ac:plain-text-body>'
        "<p>tail text</p>",
        prose=("tail text",),
        code=("int x;",),
    ),
    "noformat body never closed": Broken(
        '<ac:structured-macro ac:name="noformat"><ac:plain-text-body><![CDATA[raw]]>'
        "<p>tail text</p>",
        prose=("tail text",),
        code=("raw",),
    ),
    "code body without CDATA never closed": Broken(
        CODE + "<ac:plain-text-body>code words<p>tail text</p>",
        prose=("tail text",),
        code=("code words",),
    ),
    "split CDATA terminator, macro never closed": Broken(
        CODE + "<ac:plain-text-body><![CDATA[a]]]]><![CDATA[>b]]></ac:plain-text-body>"
        "<p>tail text</p>",
        prose=("tail text",),
        code=("a]]>b",),
    ),
    "info macro never closed": Broken(
        INFO + '<ac:parameter ac:name="icon">false</ac:parameter><ac:rich-text-body><p>inside</p>'
        "</ac:rich-text-body><p>tail text</p>",
        prose=("**Info:** inside", "tail text"),
        hidden=("false",),
    ),
    "status macro never closed in a paragraph": Broken(
        "<p>before " + STATUS + '<ac:parameter ac:name="colour">Green</ac:parameter>'
        '<ac:parameter ac:name="title">DONE</ac:parameter> after words</p><p>tail text</p>',
        prose=("before DONE after words", "tail text"),
        hidden=("Green",),
    ),
    "editor metadata in a macro never closed": Broken(
        "<p>" + STATUS + '<ac:parameter ac:name="title">OK</ac:parameter>'
        "<fab:display-type>INLINE</fab:display-type> after words</p>",
        prose=("OK after words",),
        hidden=("INLINE",),
    ),
    "toc macro never closed": Broken(
        '<ac:structured-macro ac:name="toc"><ac:parameter ac:name="maxLevel">3</ac:parameter>'
        "<p>tail text</p>",
        prose=("tail text",),
        hidden=("3",),
    ),
    "macro without a name never closed": Broken(
        "<ac:structured-macro><p>tail text</p>", prose=("tail text",)
    ),
    "jira macro never closed": Broken(
        '<p>see <ac:structured-macro ac:name="jira"><ac:parameter ac:name="key">AB-1'
        "</ac:parameter> tail text</p>",
        prose=("see AB-1 tail text",),
    ),
    "text in a macro outside its body": Broken(
        '<ac:structured-macro ac:name="x-y">loose words<ac:rich-text-body><p>body</p>'
        "</ac:rich-text-body></ac:structured-macro>",
        prose=("loose words", "body"),
    ),
    # --- parameters left open ---------------------------------------------------------------
    "parameter never closed swallows the body": Broken(
        CODE + '<ac:parameter ac:name="title">Setup<ac:plain-text-body><![CDATA[make]]>'
        "</ac:plain-text-body></ac:structured-macro><p>tail text</p>",
        prose=("**Setup**", "tail text"),
        code=("make",),
    ),
    "parameter never closed before a paragraph": Broken(
        INFO + '<ac:parameter ac:name="icon">false<p>tail text</p>',
        prose=("tail text",),
        hidden=("false",),
    ),
    "CDATA in a parameter never terminated": Broken(
        '<ac:structured-macro ac:name="x-y"><ac:parameter ac:name="a"><![CDATA[secret'
        "</ac:parameter></ac:structured-macro><p>tail text</p>",
        prose=("tail text",),
        hidden=("secret",),
    ),
    # --- links, images and small elements left open -------------------------------------------
    "link never closed": Broken(
        '<p><ac:link><ri:page ri:content-title="T"/><ac:link-body>label</ac:link-body>'
        " tail text</p><p>more</p>",
        prose=("label", "tail text", "more"),
    ),
    "resource identifier never closed in a link": Broken(
        '<p><ac:link><ri:page ri:content-title="T"><ac:link-body>label</ac:link-body></ac:link>'
        " tail text</p>",
        prose=("label", "tail text"),
    ),
    "resource identifier never closed in a paragraph": Broken(
        '<p>see <ri:page ri:content-title="T"> tail text</p><p>more</p>',
        prose=("see tail text", "more"),
    ),
    "plain-text link body never closed": Broken(
        '<p><ac:link><ri:page ri:content-title="T"/><ac:plain-text-link-body><![CDATA[label]]>'
        "<strong>tail text</strong></ac:link></p>",
        prose=("label", "**tail text**"),
    ),
    "image never closed": Broken(
        '<p><ac:image><ri:attachment ri:filename="a.png"/> tail text</p>',
        prose=("tail text",),
    ),
    "emoticon never closed": Broken(
        '<p>a <ac:emoticon ac:name="smile"> tail text</p>', prose=("tail text",)
    ),
    "date never closed": Broken(
        '<p>due <time datetime="2024-01-01"> tail text</p>', prose=("2024-01-01 tail text",)
    ),
    "placeholder never closed": Broken(
        "<p>a <ac:placeholder>type here<p>tail text</p>",
        prose=("tail text",),
        hidden=("type here",),
    ),
    # --- tasks -----------------------------------------------------------------------------
    "task list never closed": Broken(
        "<ac:task-list><ac:task><ac:task-status>incomplete</ac:task-status><ac:task-body>do it"
        "</ac:task-body></ac:task><p>tail text</p>",
        prose=("- [ ] do it", "tail text"),
    ),
    "task status never closed": Broken(
        "<ac:task-list><ac:task><ac:task-status>complete<ac:task-body>do it</ac:task-body>"
        "</ac:task></ac:task-list><p>tail text</p>",
        prose=("do it", "tail text"),
    ),
    "task never closed before the next": Broken(
        "<ac:task-list><ac:task><ac:task-status>incomplete</ac:task-status><ac:task-body>one"
        "</ac:task-body><ac:task><ac:task-status>complete</ac:task-status><ac:task-body>two"
        "</ac:task-body></ac:task></ac:task-list>",
        prose=("- [ ] one", "- [x] two"),
    ),
    # --- tables ----------------------------------------------------------------------------
    "text directly in a row": Broken(
        "<table><tr>stray words<td>cell</td></tr></table>", prose=("stray words", "| cell |")
    ),
    "text directly in a table": Broken(
        "<table>stray words<tr><td>cell</td></tr></table>", prose=("stray words", "| cell |")
    ),
    "table never closed before a paragraph": Broken(
        "<table><tr><td>cell</td></tr><p>tail text</p><h2>Next</h2>",
        prose=("| cell |", "tail text", "## Next"),
    ),
    "table directly inside a table": Broken(
        "<table><tr><td>a</td></tr><table><tr><td>b</td></tr></table></table>",
        prose=("| a |", "| b |"),
    ),
    "paragraph never closed before a table": Broken(
        "<p>intro words<table><tr><td>cell</td></tr></table><p>after",
        prose=("intro words", "| cell |", "after"),
    ),
    # --- text-level damage --------------------------------------------------------------------
    "less-than before a letter not escaped": Broken(
        "<p>if x<y then z</p><p>tail text</p>", prose=("x\\<y then z", "tail text")
    ),
    "attribute quote never closed": Broken(
        '<p title="abc>words</p><p>tail text</p>', prose=("words", "tail text")
    ),
    "less-than inside an attribute value": Broken(
        '<p><a href="https://x.org" title="a<b">link</a> tail text</p>',
        prose=("[link](https://x.org) tail text",),
    ),
    "unknown namespace": Broken(
        "<p>x <foo:bar>inner words</foo:bar> y</p>", prose=("x inner words y",)
    ),
    "unknown namespace never closed": Broken(
        "<p>x <foo:bar>inner words</p><p>tail text</p>", prose=("inner words", "tail text")
    ),
    "CDATA in a paragraph never terminated": Broken(
        "<p>a <![CDATA[inside cdata</p><p>tail text</p>",
        prose=("a inside cdata", "tail text"),
    ),
    "code body outside any macro": Broken(
        "<p>a</p><ac:plain-text-body><![CDATA[stray code]]></ac:plain-text-body><p>b</p>",
        prose=("a", "b"),
        code=("stray code",),
    ),
    "pre never closed before a paragraph": Broken(
        "<pre>code line<p>tail text</p>", code=("code line\ntail text",)
    ),
    "ampersands, bad entities and control characters": Broken(
        "<p>R&D & more &bogus; &#xZZ; a\x00b\x07c</p>", prose=("R&D & more &bogus;", "abc")
    ),
    # --- documents cut off ------------------------------------------------------------------
    "cut mid-tag": Broken("<p>first words</p><p>second <stro", prose=("first words", "second")),
    "cut inside an attribute": Broken(
        '<p>first words</p><p>second <a href="https://x', prose=("first words", "second")
    ),
    "cut inside a CDATA section": Broken(
        "<p>first words</p>" + CODE + PYTHON + "<ac:plain-text-body><![CDATA[def f():\n  ret",
        prose=("first words",),
        code=("def f():\n  ret",),
    ),
    "cut inside a parameter": Broken(
        "<p>first words</p>" + CODE + '<ac:parameter ac:name="theme">Midn',
        prose=("first words",),
        hidden=("Midn",),
    ),
}


@pytest.mark.parametrize("case", BROKEN.values(), ids=BROKEN.keys())
def test_malformed_storage_keeps_its_words_in_place(case: Broken) -> None:
    markdown = storage_to_markdown(case.storage, CTX)
    prose = text_outside_code(markdown)
    code = "\n".join(block.code for block in extract_code_blocks(markdown))
    for words in case.prose:
        assert words in prose, markdown
    for words in case.code:
        assert words in code, markdown
    for words in case.hidden:
        assert words not in markdown
    assert not RAW_MARKUP.search(prose)


def test_code_after_a_macro_left_open_stays_one_block_and_the_rest_is_prose() -> None:
    page = (
        "<h1>Setup</h1>" + CODE + PYTHON + "<ac:plain-text-body><![CDATA[pip install x]]>"
        "</ac:plain-text-body><p>Then run it.</p>"
    )
    expected = "# Setup\n\n```python\npip install x\n```\n\nThen run it."
    assert storage_to_markdown(page, CTX) == expected


def test_code_showing_storage_format_keeps_its_cdata_and_end_tags() -> None:
    # The terminator rules must not cut code that quotes storage: its "]]>" is split.
    shown = "<ac:plain-text-body><![CDATA[y]]></ac:plain-text-body>\n<![CDATA[z"
    stored = shown.replace("]]>", "]]]]><![CDATA[>")
    page = CODE + f"<ac:plain-text-body><![CDATA[{stored}]]></ac:plain-text-body>"
    page += "</ac:structured-macro>"
    assert storage_to_markdown(page, CTX) == f"```\n{shown}\n```"


def test_stray_content_moves_to_where_the_source_has_it() -> None:
    document = xhtml.parse("<table>before<tr><td>cell</td></tr><p>after</p>")
    names = [n.name if isinstance(n, Element) else str(n) for n in document.contents]
    assert names == ["before", "table", "p"]


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ("<pre>a<br/>b</pre>", "```\na\nb\n```"),
        ("<pre><div>a</div><div>b</div></pre>", "```\na\nb\n```"),
        (CODE + "<ac:rich-text-body><p>one</p><p>two</p></ac:rich-text-body></ac:structured-macro>",
         "```\none\ntwo\n```"),
    ],
)  # fmt: skip
def test_blocks_inside_code_start_new_lines(storage: str, expected: str) -> None:
    assert storage_to_markdown(storage, CTX) == expected


@pytest.mark.parametrize(
    "opener",
    [
        '<ac:emoticon ac:name="smile">',
        '<ri:page ri:content-title="T">',
        '<ac:structured-macro ac:name="toc">',
        "<table><tr><td>c</td></tr>",
    ],
)
def test_long_runs_of_unclosed_elements_keep_their_words_in_linear_time(opener: str) -> None:
    def page(count: int) -> str:
        return "<p>" + "".join(f"{opener}w{i:05d}z " for i in range(count))

    small = min(conversion_cpu_seconds(page(1_000), CTX)[0] for _ in range(3))
    large, markdown = conversion_cpu_seconds(page(8_000), CTX)
    assert all(f"w{i:05d}z" in markdown for i in range(8_000))
    # 8x the input; lifting the same content level by level would show as ~64x.
    assert large < max(small, 0.01) * 16, (small, large)


# --- property: damage a well-formed page, keep the words --------------------------------------

_WORD = "w{:03d}q"  # fixed width, so no word is part of another
_CONFIG = "cfg{:03d}x"


class _Page:
    """Storage built piece by piece, with where each word ends."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.words: list[tuple[str, int]] = []  # (word, offset just past it)
        self.config: list[str] = []

    def __repr__(self) -> str:  # how hypothesis shows a failing page
        return repr(self.storage)

    def add(self, *markup: str) -> None:
        for piece in markup:
            self.parts.append(piece)
            self.size += len(piece)

    def word(self) -> None:
        word = _WORD.format(len(self.words))
        self.add(word)
        self.words.append((word, self.size))

    def setting(self, name: str) -> None:
        value = _CONFIG.format(len(self.config))
        self.config.append(value)
        self.add(f'<ac:parameter ac:name="{name}">{value}</ac:parameter>')

    @property
    def storage(self) -> str:
        return "".join(self.parts)


_INLINE = ["text", "strong", "em", "a", "code", "link", "cdata link", "status", "emoticon", "br"]
_BLOCKS = ["p", "h2", "list", "table", "code", "panel", "expand", "tasks", "layout", "image"]


def _inline(draw: st.DrawFn, page: _Page) -> None:
    for kind in draw(st.lists(st.sampled_from(_INLINE), min_size=1, max_size=3)):
        page.add(" ")
        if kind == "text":
            page.word()
        elif kind in ("strong", "em", "code"):
            page.add(f"<{kind}>")
            page.word()
            page.add(f"</{kind}>")
        elif kind == "a":
            page.add('<a href="https://example.com/x">')
            page.word()
            page.add("</a>")
        elif kind == "link":
            page.add('<ac:link><ri:page ri:content-title="Other page"/><ac:link-body>')
            page.word()
            page.add("</ac:link-body></ac:link>")
        elif kind == "cdata link":
            page.add('<ac:link><ri:page ri:content-title="Other page"/>')
            page.add("<ac:plain-text-link-body><![CDATA[")
            page.word()
            page.add("]]></ac:plain-text-link-body></ac:link>")
        elif kind == "status":
            page.add('<ac:structured-macro ac:name="status">')
            page.setting("colour")
            page.add('<ac:parameter ac:name="title">')
            page.word()
            page.add("</ac:parameter></ac:structured-macro>")
        elif kind == "emoticon":
            page.add('<ac:emoticon ac:name="smile"/>')
        else:
            page.add("<br/>")
        page.add(" ")


def _blocks(draw: st.DrawFn, page: _Page, depth: int) -> None:
    kinds = _BLOCKS if depth < 2 else _BLOCKS[:5]  # containers nest two levels at most
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=4)):
        _block(draw, page, kind, depth)


def _block(draw: st.DrawFn, page: _Page, kind: str, depth: int) -> None:
    if kind in ("p", "h2"):
        page.add(f"<{kind}>")
        _inline(draw, page)
        page.add(f"</{kind}>")
    elif kind == "list":
        page.add("<ul>")
        for _ in range(draw(st.integers(1, 3))):
            page.add("<li>")
            _inline(draw, page)
            page.add("</li>")
        page.add("</ul>")
    elif kind == "table":
        page.add("<table><tbody>")
        columns = draw(st.integers(1, 3))
        for row in range(draw(st.integers(1, 3))):
            page.add("<tr>")
            for _ in range(columns):
                cell = "th" if row == 0 else "td"
                page.add(f"<{cell}>")
                _inline(draw, page)
                page.add(f"</{cell}>")
            page.add("</tr>")
        page.add("</tbody></table>")
    elif kind == "code":
        page.add('<ac:structured-macro ac:name="code">', PYTHON)
        page.setting("theme")
        page.add("<ac:plain-text-body><![CDATA[")
        page.word()
        page.add(" = 1\nprint(")
        page.word()
        page.add(")]]></ac:plain-text-body></ac:structured-macro>")
    elif kind in ("panel", "expand"):
        page.add(f'<ac:structured-macro ac:name="{"info" if kind == "panel" else "expand"}">')
        page.setting("icon")
        page.add("<ac:rich-text-body>")
        _blocks(draw, page, depth + 1)
        page.add("</ac:rich-text-body></ac:structured-macro>")
    elif kind == "tasks":
        page.add("<ac:task-list>")
        statuses = st.lists(st.sampled_from(["complete", "incomplete"]), min_size=1, max_size=3)
        for status in draw(statuses):
            page.add(f"<ac:task><ac:task-status>{status}</ac:task-status><ac:task-body>")
            _inline(draw, page)
            page.add("</ac:task-body></ac:task>")
        page.add("</ac:task-list>")
    elif kind == "layout":
        page.add('<ac:layout><ac:layout-section ac:type="single"><ac:layout-cell>')
        _blocks(draw, page, depth + 1)
        page.add("</ac:layout-cell></ac:layout-section></ac:layout>")
    else:
        page.add('<ac:image><ri:attachment ri:filename="diagram.png"/><ac:caption><p>')
        page.word()
        page.add("</p></ac:caption></ac:image>")


@st.composite
def _pages(draw: st.DrawFn) -> _Page:
    page = _Page()
    _blocks(draw, page, 0)
    return page


_CLOSING_TAG = re.compile(r"</[^>]+>")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page=_pages(), damage=st.sampled_from(["truncate", "end tag", "CDATA end"]), data=st.data())
def test_damaged_pages_keep_their_words(page: _Page, damage: str, data: st.DataObject) -> None:
    """Truncated: every word that ends before the cut survives. A closing tag or a CDATA
    terminator deleted: every word survives (what an unclosed element swallowed is lifted
    out; a section without its terminator ends where its holder is closed). Either way no
    macro parameter that is configuration shows, and no storage markup outside code."""
    storage = page.storage
    if damage == "truncate":
        cut = data.draw(st.integers(0, len(storage)), label="cut")
        damaged = storage[:cut]
        expected = [word for word, end in page.words if end <= cut]
    else:
        pattern = _CLOSING_TAG if damage == "end tag" else re.compile(re.escape("]]>"))
        spans = [m.span() for m in pattern.finditer(storage)]
        assume(spans)
        start, end = data.draw(st.sampled_from(spans), label="deleted")
        damaged = storage[:start] + storage[end:]
        expected = [word for word, _ in page.words]

    markdown = storage_to_markdown(damaged, CTX)
    missing = [word for word in expected if word not in markdown]
    assert not missing, (damaged, markdown)
    assert not [value for value in page.config if value in markdown], markdown
    assert not RAW_MARKUP.search(text_outside_code(markdown)), markdown
