"""Snippets: escaped first, then highlighted; windows around the first match."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confluence_rag.search.snippets import Highlighter, highlight, readable, stem


def test_script_tags_are_escaped_never_rendered() -> None:
    html = highlight('<script>alert("x")</script> deploy now', ["deploy", "script"])
    assert "<script>" not in html and "</script>" not in html
    assert "&lt;<mark>script</mark>&gt;" in html
    assert "<mark>deploy</mark>" in html
    # the only tags left are ours
    assert html.replace("<mark>", "").replace("</mark>", "").count("<") == 0


@pytest.mark.parametrize("term", ["lt", "gt", "amp", "quot", "x27"])
def test_terms_never_match_inside_an_entity(term: str) -> None:
    html = highlight("a < b > c & d \"e\" 'f' and lt gt amp quot x27", [term])
    assert html.count("<mark>") == 1
    assert f"<mark>{term}</mark>" in html
    assert "&lt;" in html and "&amp;" in html


def test_attribute_breaking_characters_are_escaped() -> None:
    html = highlight("\" onmouseover='alert(1)' ok", ["ok"])
    assert '"' not in html.replace("<mark>", "").replace("</mark>", "")
    assert "'" not in html


@pytest.mark.parametrize(
    ("text", "terms", "marked"),
    [
        ("Deploying the service", ["deploy"], ["Deploying"]),
        ("deploys and deployed", ["deployment"], []),
        ("policies and policy", ["policy"], ["policies", "policy"]),
        ("KUBECTL apply", ["kubectl"], ["KUBECTL"]),
        ("部署指南 文档", ["部署"], ["部署指南"]),
        ("nothing here", ["absent"], []),
    ],
)
def test_matching_words(text: str, terms: list[str], marked: list[str]) -> None:
    html = highlight(text, terms)
    assert [part.split("</mark>")[0] for part in html.split("<mark>")[1:]] == marked


def test_long_text_is_windowed_around_the_first_match() -> None:
    text = " ".join(["filler"] * 200) + " the needle is here " + " ".join(["tail"] * 200)
    html = highlight(text, ["needle"], max_chars=120)
    assert "<mark>needle</mark>" in html
    assert html.startswith("…") and html.endswith("…")
    assert len(html.replace("<mark>", "").replace("</mark>", "")) <= 124


def test_short_text_is_kept_whole_with_whitespace_collapsed() -> None:
    assert highlight("a\n\n  b\tc", []) == "a b c"


def test_stem_is_light_and_never_too_short() -> None:
    assert stem("running") == "runn"
    assert stem("uses") == "use"
    assert stem("is") == "is"


def test_snippets_read_like_text_not_markdown_syntax() -> None:
    markdown = (
        "## Rollback\n"
        "See [Demo Home](http://127.0.0.1:8090/wiki/display/DEMO/Demo+Home) first, **always**.\n"
        "> **Note:** ask ![diagram](http://x/a(b).png) the on-call.\n"
        "| step | owner |\n|---|:---:|\n| deploy | ops |\n"
    )
    text = readable(markdown)
    assert text.splitlines() == [
        "Rollback",
        "See Demo Home first, always.",
        "Note: ask diagram the on-call.",
        "| step | owner |",
        "| deploy | ops |",
    ]
    assert "http" not in highlight(markdown, ["demo"])


def test_code_inside_fences_is_kept_verbatim_in_snippets() -> None:
    markdown = "```bash\n# marker: rollback **now**\nkubectl rollout undo [x](y)\n```\nafter"
    assert readable(markdown).splitlines() == [
        "# marker: rollback **now**",
        "kubectl rollout undo [x](y)",
        "after",
    ]


_PIECES = ["deploy", "Deployed", "policies", "amp", "lt", "x27", "tumour", "TUMOR", "ab", "über"]
_GLUE = ["", " ", " ", "_", "-", "&", ";", "<", "'", "3", "#"]


@settings(max_examples=400, deadline=None)
@given(
    pieces=st.lists(
        st.one_of(
            st.sampled_from(_PIECES),
            st.sampled_from(_GLUE),
            st.text(alphabet="abdelétx<>&\"'_-.; 3", max_size=6),
        ),
        max_size=60,
    ),
    terms=st.lists(
        st.sampled_from(["deploy", "policy", "tumor", "lt", "amp", "ab", "über"]), max_size=3
    ),
)
def test_marks_exactly_the_words_a_word_by_word_scan_marks(
    pieces: list[str], terms: list[str]
) -> None:
    """The per-query regex that finds candidate words is only a shortcut: the result must be
    what checking every word of the escaped window would give (pieces glued without spaces
    put term-like letters inside longer words)."""
    text = "".join(pieces)
    highlighter = Highlighter(terms)
    got = highlighter(text)
    window = got.replace("<mark>", "").replace("</mark>", "")
    expected = re.sub(
        r"&(?:#[0-9a-zA-Z]+|[a-zA-Z]+);|[^\W_]+",
        lambda m: (
            m.group(0)
            if m.group(0).startswith("&") or not highlighter.is_match(m.group(0))
            else f"<mark>{m.group(0)}</mark>"
        ),
        window,
    )
    assert got == (expected if highlighter.stems else window)
