"""Fences written by the converter, and finding code blocks again in Markdown."""

from __future__ import annotations

import pytest

from confluence_rag.content.code_blocks import (
    clean_code,
    extract_code_blocks,
    fence_for,
    render_fenced,
)
from confluence_rag.content.languages import known_language, normalise_language
from confluence_rag.content.models import CodeBlock
from confluence_rag.content.storage import ConversionContext, storage_to_markdown


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("js", "javascript"),
        ("JavaScript", "javascript"),
        ("sh", "bash"),
        ("shell", "bash"),
        ("bash", "bash"),
        ("py", "python"),
        ("yml", "yaml"),
        ("c#", "csharp"),
        ("C++", "cpp"),
        ("ts", "typescript"),
        ("html/xml", "xml"),
        ("actionscript3", "actionscript"),
        ("golang", "go"),
        ("ps1", "powershell"),
        ("none", ""),
        ("text", ""),
        ("  ", ""),
        (None, ""),
        ("zig", "zig"),
        ("Nested", "nested"),
        ("${LANGUAGE_MAP[x]}", ""),
        ("two words", ""),
        ("a`b", ""),
    ],
)
def test_normalise_language(given: str | None, expected: str) -> None:
    assert normalise_language(given) == expected


def test_known_language_rejects_unknown_names() -> None:
    assert known_language("sql") == "sql"
    assert known_language("plantuml") == "plantuml"
    assert known_language("my-macro") == ""


@pytest.mark.parametrize(
    ("code", "fence"),
    [("x", "```"), ("a ` b", "```"), ("``` inside", "````"), ("x\n`````\ny", "``````")],
)
def test_fence_is_longer_than_any_backtick_run(code: str, fence: str) -> None:
    assert fence_for(code) == fence


def test_clean_code_keeps_first_line_indentation_and_inner_blank_lines() -> None:
    assert clean_code("\r\n\n    indented\r\n\n  more\n  \n") == "    indented\n\n  more"


def test_render_fenced_with_caption() -> None:
    assert render_fenced("a\n", "python", "Title") == "\n\n**Title**\n```python\na\n```\n\n"
    assert render_fenced("", "python") == "\n\n```python\n```\n\n"


def test_extract_code_blocks_with_headings_captions_and_containers() -> None:
    markdown = "\n".join(
        [
            "# Guide",
            "",
            "## Install",
            "",
            "**setup.sh**",
            "```bash",
            "make",
            "",
            "make test",
            "```",
            "",
            "### Deep",
            "",
            "- step:",
            "",
            "  ```python",
            "  print(1)",
            "",
            "      indented()",
            "  ```",
            "",
            "## Notes",
            "",
            "> **Info:** look",
            ">",
            "> ````js",
            "> a ``` b",
            ">",
            "> ````",
            "",
            "```",
            "# not a heading",
            "```",
            "",
            "```sql",
            "left open",
        ]
    )
    assert extract_code_blocks(markdown) == [
        CodeBlock("bash", "make\n\nmake test", 3, ("Guide", "Install"), "setup.sh"),
        CodeBlock("python", "print(1)\n\n    indented()", 3, ("Guide", "Install", "Deep")),
        CodeBlock("js", "a ``` b\n", 2, ("Guide", "Notes")),
        CodeBlock("", "# not a heading", 1, ("Guide", "Notes")),
        CodeBlock("sql", "left open", 1, ("Guide", "Notes")),
    ]


def test_blocks_written_by_the_converter_round_trip() -> None:
    code = "def f():\n    return '```'\n\n\tx = 1"

    def macro(language: str, title: str, body: str) -> str:
        return (
            f'<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">{language}'
            f'</ac:parameter><ac:parameter ac:name="title">{title}</ac:parameter>'
            f"<ac:plain-text-body><![CDATA[{body}]]></ac:plain-text-body></ac:structured-macro>"
        )

    page = (
        "<h1>Top</h1>"
        + macro("py", "Example", code)
        + "<h2>Inside</h2><ul><li><p>item</p>"
        + macro("sh", "", "echo hi")
        + '</li></ul><ac:structured-macro ac:name="warning"><ac:rich-text-body>'
        + macro("yml", "cfg", "a:\n  b: 1")
        + "</ac:rich-text-body></ac:structured-macro>"
    )
    markdown = storage_to_markdown(page, ConversionContext())
    assert extract_code_blocks(markdown) == [
        CodeBlock("python", code, 4, ("Top",), "Example"),
        CodeBlock("bash", "echo hi", 1, ("Top", "Inside")),
        CodeBlock("yaml", "a:\n  b: 1", 2, ("Top", "Inside"), "cfg"),
    ]
