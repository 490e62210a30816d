"""Markdown rendering of untrusted page content: raw HTML off, only safe link schemes."""

from __future__ import annotations

import pytest

from confluence_rag.web.render import is_safe_url, render_markdown


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "text <img src=x onerror=alert(1)> more",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=//evil.example></iframe>",
        "<svg onload=alert(1)>",
    ],
)
def test_raw_html_is_shown_as_text(markdown: str) -> None:
    html = render_markdown(markdown)
    assert "<script" not in html and "<img" not in html and "<iframe" not in html
    assert "<svg" not in html and "<a " not in html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "markdown",
    [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](java&#x09;script:alert(1))",
        "[click](&#106;avascript:alert(1))",
        "[click](vbscript:msgbox(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "![img](javascript:alert(1))",
        "<javascript:alert(1)>",
        "[ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_unsafe_link_targets_never_become_links(markdown: str) -> None:
    html = render_markdown(markdown)
    assert "href=" not in html and "src=" not in html, html


@pytest.mark.parametrize(
    ("markdown", "href"),
    [
        ("[docs](https://example.com/a?b=1)", "https://example.com/a?b=1"),
        ("[mail](mailto:ops@example.com)", "mailto:ops@example.com"),
        ("[rel](/pages/x)", "/pages/x"),
        ("[frag](#top)", "#top"),
    ],
)
def test_safe_links_render(markdown: str, href: str) -> None:
    html = render_markdown(markdown)
    assert f'href="{href}"' in html


def test_external_links_get_noopener() -> None:
    html = render_markdown("[x](https://example.com)")
    assert 'rel="noopener noreferrer nofollow"' in html


def test_code_tables_and_text_are_escaped_not_dropped() -> None:
    html = render_markdown(
        "# Title & <b>\n\n```python\nif a < b:\n    print('<hi>')\n```\n\n"
        "| a | b |\n|---|---|\n| <i>1</i> | 2 |\n"
    )
    assert "<h1>Title &amp; &lt;b&gt;</h1>" in html
    assert 'class="language-python"' in html and "if a &lt; b:" in html
    assert "<table>" in html and "&lt;i&gt;1&lt;/i&gt;" in html


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://x.example", True),
        ("http://x.example", True),
        ("mailto:a@b.c", True),
        ("/relative", True),
        ("relative/path", True),
        ("javascript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\nscript:alert(1)", False),
        ("data:text/html,x", False),
        ("ftp://x.example", False),
        ("", False),
    ],
)
def test_is_safe_url(url: str, safe: bool) -> None:
    assert is_safe_url(url) is safe
