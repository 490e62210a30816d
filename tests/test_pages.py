"""The heading tree of a page's Markdown (``pages.outline``): pure, so plain cases."""

from __future__ import annotations

from confluence_rag.pages import Heading, outline


def test_headings_nest_under_the_nearest_smaller_level() -> None:
    markdown = "\n".join(
        [
            "# Deploy",
            "intro",
            "## Before you start",
            "### Access",
            "## Rollback ##",
            "# Appendix",
        ]
    )
    assert outline(markdown) == [
        Heading(
            1,
            "Deploy",
            (
                Heading(2, "Before you start", (Heading(3, "Access"),)),
                Heading(2, "Rollback"),
            ),
        ),
        Heading(1, "Appendix"),
    ]


def test_a_page_that_skips_levels_still_gets_a_tree() -> None:
    assert outline("### Deep first\n# Top\n### Under top") == [
        Heading(3, "Deep first"),
        Heading(1, "Top", (Heading(3, "Under top"),)),
    ]


def test_hashes_in_code_blocks_and_without_a_space_are_not_headings() -> None:
    markdown = "\n".join(
        [
            "# Real",
            "```bash",
            "# a shell comment",
            "```",
            "#hashtag",
            "~~~",
            "## also code",
            "~~~",
            "## Second",
        ]
    )
    assert outline(markdown) == [Heading(1, "Real", (Heading(2, "Second"),))]


def test_no_headings_no_outline() -> None:
    assert outline("") == [] and outline("plain text\nmore") == []
