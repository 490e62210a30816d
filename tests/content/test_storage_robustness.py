"""Malformed, hostile and huge input: the converter degrades to text and never raises."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confluence_rag.content import xhtml
from confluence_rag.content.storage import ConversionContext, storage_to_markdown
from tests.content.markdown_checks import RAW_MARKUP, conversion_cpu_seconds, text_outside_code

CTX = ConversionContext(base_url="https://x.atlassian.net/wiki", space_key="DEV", page_id="1")

MALFORMED = [
    (
        "unclosed tags",
        "<p>unclosed <b>bold <ul><li>item <table><tr><td>cell",
        ["unclosed", "bold", "item", "cell"],
    ),
    ("stray end tags", "<p>a</p></div></ac:structured-macro></td><p>b</p>", ["a", "b"]),
    ("stray CDATA end", "<p>x ]]> y</p>", ["x ]]> y"]),
    (
        "unterminated CDATA",
        '<ac:structured-macro ac:name="code"><ac:plain-text-body><![CDATA[x = 1\ny = 2',
        ["x = 1\ny = 2"],
    ),
    ("entities XML does not know", "<p>a&nbsp;b &mdash; c &hellip;</p>", ["a b — c …"]),
    ("bogus entities", "<p>&bogus; &#0; &#xD800; &#99999999; & alone</p>", ["&bogus", "& alone"]),
    ("control characters", "<p>a\x00b\x07c\x1fd</p>", ["abcd"]),
    ("word conditional comments", "<p><![if !supportLists]>1.<![endif]> item</p>", ["item"]),
    ("unknown marked section", "<p>x <![FOO[ y ]]> z</p>", ["x", "z"]),
    ("lone surrogate", "<p>a\ud800b</p>", ["ab"]),
    (
        "attribute without quotes",
        "<p class=x>text</p><ac:link><ri:page ri:content-title=T/></ac:link>",
        ["text"],
    ),
    (
        "macro missing its name",
        "<ac:structured-macro><ac:rich-text-body><p>body</p></ac:rich-text-body></ac:structured-macro>",
        ["body"],
    ),  # noqa: E501
    ("doctype and processing instruction", '<?xml version="1.0"?><!DOCTYPE html><p>ok</p>', ["ok"]),
    ("script and style", "<script>alert(1)</script><style>p{}</style><p>shown</p>", ["shown"]),
]


@pytest.mark.parametrize(
    ("xhtml_in", "must_contain"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_input_degrades_to_text(xhtml_in: str, must_contain: list[str]) -> None:
    markdown = storage_to_markdown(xhtml_in, CTX)
    for fragment in must_contain:
        assert fragment in markdown
    assert not RAW_MARKUP.search(text_outside_code(markdown))


def test_script_content_is_not_text() -> None:
    assert storage_to_markdown("<script>alert(1)</script><p>shown</p>", CTX) == "shown"


def test_deeply_nested_tables_flatten_instead_of_overflowing() -> None:
    depth = 400
    page = "<table><tr><td>" * depth + "innermost" + "</td></tr></table>" * depth
    markdown = storage_to_markdown(page, CTX)
    assert "innermost" in markdown


def test_very_deep_unclosed_nesting() -> None:
    page = "<div><p><span>" * 20_000 + "bottom"
    markdown = storage_to_markdown(page, CTX)
    assert markdown.endswith("bottom")


def test_deep_macros_keep_text_but_not_parameters() -> None:
    depth = 300
    opening = '<ac:structured-macro ac:name="expand"><ac:parameter ac:name="secret">PARAMVALUE</ac:parameter><ac:rich-text-body>'  # noqa: E501
    page = (
        opening * depth + "<p>deep words</p>" + "</ac:rich-text-body></ac:structured-macro>" * depth
    )
    markdown = storage_to_markdown(page, CTX)
    assert "deep words" in markdown
    assert "PARAMVALUE" not in markdown


def test_cap_depth_counts_flattened_subtrees() -> None:
    soup = xhtml.parse("<div>" * 5 + "x" + "</div>" * 5)
    assert xhtml.cap_depth(soup, 2) == 1
    assert soup.get_text() == "x"


def test_plain_text_fallback_keeps_words_and_code_drops_parameters() -> None:
    page = (
        '<h1>Title</h1><ac:structured-macro ac:name="code"><ac:parameter ac:name="language">js'
        "</ac:parameter><ac:plain-text-body><![CDATA[let a = 1 < 2;]]></ac:plain-text-body>"
        "</ac:structured-macro><p>Tom &amp; Jerry <ac:placeholder>hint</ac:placeholder></p>"
    )
    assert xhtml.plain_text(page) == "Title\n\nlet a = 1 < 2;\n\nTom & Jerry"


def test_converter_failure_falls_back_to_text_and_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A handler that breaks stands in for input nobody anticipated.
    from confluence_rag.content import storage

    def broken(*args: object) -> str:
        raise RuntimeError("handler bug")

    monkeypatch.setitem(storage.HANDLERS, "ac:link", broken)
    page = '<p>Before <ac:link><ri:page ri:content-title="T"/></ac:link> after</p>'
    with caplog.at_level(logging.WARNING, logger="confluence_rag.content.storage"):
        markdown = storage_to_markdown(page, CTX)
    assert markdown == "Before after"
    assert "falling back to plain text" in caplog.text
    assert "RuntimeError" in caplog.text


_PROSE = (
    "Deployments roll out region by region; each stage waits for the health checks of the "
    "previous one and stops on the first failed probe, so a bad build never reaches every "
    "customer at once. Rollbacks reuse the same path in reverse and take about ten minutes. "
)


def _dense_page(target_bytes: int) -> str:
    """Markup-heavy storage: a tag every ~25 bytes (tables, macros, links, lists)."""
    unit = (
        "<h2>Section</h2><p>Some <strong>bold</strong> words and a "
        '<ac:link><ri:page ri:content-title="Other page"/></ac:link> link.</p>'
        '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">py</ac:parameter>'
        "<ac:plain-text-body><![CDATA[def f(x):\n    return x * 2\n]]></ac:plain-text-body>"
        '</ac:structured-macro><ac:structured-macro ac:name="info"><ac:rich-text-body><p>Note '
        "text</p></ac:rich-text-body></ac:structured-macro><table><tr><th>k</th><th>v</th></tr>"
        "<tr><td>a</td><td>1</td></tr><tr><td>b</td><td>2</td></tr></table>"
        "<ul><li>one</li><li>two <em>three</em></li></ul>"
    )
    return unit * (target_bytes // len(unit) + 1)


def _prose_page(target_bytes: int) -> str:
    """A long, ordinary page: prose paragraphs with the usual macros, links and a table."""
    unit = (
        "<h2>Rollout</h2>"
        + f"<p>{_PROSE * 2}</p><p>{_PROSE}See "
        + '<ac:link><ri:page ri:content-title="Release checklist"/></ac:link> first.</p>'
        + '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash</ac:parameter>'
        + "<ac:plain-text-body><![CDATA[kubectl rollout status deploy/api\n"
        + "kubectl rollout undo deploy/api]]></ac:plain-text-body></ac:structured-macro>"
        + f'<ac:structured-macro ac:name="note"><ac:rich-text-body><p>{_PROSE}</p>'
        + "</ac:rich-text-body></ac:structured-macro>"
        + "<table><tr><th>Stage</th><th>Owner</th></tr><tr><td>canary</td><td>SRE</td></tr>"
        + "<tr><td>eu-west</td><td>Platform</td></tr></table>"
        + f"<ul><li>{_PROSE}</li><li>{_PROSE}</li></ul>"
    )
    return unit * (target_bytes // len(unit) + 1)


def _cpu_seconds(page: str) -> tuple[float, str]:
    return conversion_cpu_seconds(page, CTX)


def test_prose_pages_scale_linearly_up_to_a_megabyte() -> None:
    # How fast is bench/convert.py's to say; a test can say the cost is linear. CPU time, the
    # best of three for the small page: a busy machine inflates both sides alike.
    storage_to_markdown(_prose_page(20_000), CTX)  # warm imports and caches
    small_time = min(_cpu_seconds(_prose_page(125_000))[0] for _ in range(3))
    page = _prose_page(1_000_000)
    large_time, markdown = _cpu_seconds(page)
    assert markdown.count("```bash") == page.count('ac:name="code"')
    # 8x the input; quadratic behaviour anywhere would show as ~64x.
    assert large_time < max(small_time, 0.01) * 16, (small_time, large_time)


def test_markup_heavy_pages_scale_linearly() -> None:
    small_time = min(_cpu_seconds(_dense_page(100_000))[0] for _ in range(3))
    large_time, markdown = _cpu_seconds(_dense_page(800_000))
    assert markdown.count("| a | 1 |") == _dense_page(800_000).count("<td>a</td>")
    # 8x the input; quadratic behaviour anywhere would show as ~64x.
    assert large_time < max(small_time, 0.01) * 16, (small_time, large_time)


@pytest.mark.slow
def test_five_megabyte_page_converts() -> None:
    page = _dense_page(5_000_000)
    markdown = storage_to_markdown(page, CTX)
    assert markdown.count("| a | 1 |") == page.count("<td>a</td>")


# --- property tests --------------------------------------------------------------------------

_TAGS = [
    "p", "div", "span", "table", "tbody", "tr", "td", "th", "ul", "ol", "li", "pre", "code",
    "strong", "em", "h2", "blockquote", "a", "time", "br",
    "ac:structured-macro", "ac:macro", "ac:parameter", "ac:rich-text-body", "ac:plain-text-body",
    "ac:link", "ac:link-body", "ac:plain-text-link-body", "ac:image", "ac:caption",
    "ac:task-list", "ac:task", "ac:task-body", "ac:task-status", "ac:layout",
    "ac:layout-section", "ac:layout-cell", "ac:emoticon", "ac:placeholder",
    "ac:inline-comment-marker", "ac:adf-extension", "ac:adf-node", "ac:adf-content",
    "ri:page", "ri:user", "ri:attachment", "ri:url", "ri:space", "fab:display-type",
]  # fmt: skip
_MACROS = [
    "code", "noformat", "info", "note", "tip", "warning", "panel", "expand", "status", "jira",
    "toc", "children", "include", "excerpt-include", "section", "column", "markdown", "x-y",
]  # fmt: skip
_ATTRS = [
    "ac:name", "ri:content-title", "ri:space-key", "ri:filename", "ri:account-id", "ri:value",
    "ac:anchor", "datetime", "href", "colspan", "rowspan", "start", "type",
]  # fmt: skip

_text = st.lists(
    st.sampled_from(list("ab <>&;#x]![CDATA/=\"'`\n\t") + ["ac:", "ri:", "é", "\xa0"]),
    max_size=30,
).map("".join)
_junk = st.sampled_from(
    ["]]>", "<![CDATA[", "</p>", "<ac:", "&nbsp;", "&#x0;", "&lt;ac:link&gt;", "<br>", "<!--",
     "<![CDATA[a]]]]><![CDATA[>b]]>", "<ri:page/>", "<p/>", "&amp;"]
)  # fmt: skip


@st.composite
def _attributes(draw: st.DrawFn) -> str:
    names = draw(st.lists(st.sampled_from(_ATTRS), max_size=3))
    parts = []
    for name in names:
        value = draw(st.sampled_from(_MACROS)) if name == "ac:name" else draw(_text)
        parts.append(f' {name}="{value}"')
    return "".join(parts)


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    @st.composite
    def build(draw: st.DrawFn) -> str:
        tag = draw(st.sampled_from(_TAGS))
        attrs = draw(_attributes())
        inner = "".join(draw(st.lists(children, max_size=4)))
        style = draw(st.integers(0, 9))
        if style == 0:
            return f"<{tag}{attrs}/>"
        if style == 1:
            return f"<{tag}{attrs}>{inner}"  # never closed
        return f"<{tag}{attrs}>{inner}</{tag}>"

    return build()


_leaf = st.one_of(_text, _junk, _text.map(lambda t: f"<![CDATA[{t}]]>"))
_fragment = st.recursive(_leaf, _element, max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_fragment, max_size=5).map("".join))
def test_random_xhtml_never_raises_or_leaks_markup(page: str) -> None:
    markdown = storage_to_markdown(page, CTX)
    assert isinstance(markdown, str)
    assert not RAW_MARKUP.search(text_outside_code(markdown))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(page: str) -> None:
    markdown = storage_to_markdown(page, CTX)
    assert isinstance(markdown, str)
    assert not RAW_MARKUP.search(text_outside_code(markdown))
