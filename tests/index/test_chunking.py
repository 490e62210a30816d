"""Chunking: headings, packing, limits, code fences, tables, CJK, big pages, determinism."""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confluence_rag.content.models import Document
from confluence_rag.errors import InvalidInput
from confluence_rag.index.chunking import chunk_document, chunk_markdown, content_hash
from confluence_rag.index.models import Chunk

Counter = Callable[[str], int]

WORDS = (
    "deploy the service with helm after the cluster upgrade and check that every pod "
    "reports ready before traffic moves over to the new release candidate"
).split()


def words(n: int, offset: int = 0) -> str:
    return " ".join(WORDS[(offset + i) % len(WORDS)] for i in range(n))


def sentences(n: int, length: int = 12) -> str:
    return " ".join(words(length, offset=i).capitalize() + "." for i in range(n))


def assert_invariants(chunks: list[Chunk], count_tokens: Counter, max_tokens: int = 256) -> None:
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text.strip(), "no empty chunks"
        assert chunk.token_count == count_tokens(chunk.embed_text)
        assert chunk.token_count <= max_tokens
        assert chunk.content_hash == content_hash(chunk.embed_text)
        assert chunk.embed_text.endswith(chunk.text)


def non_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- empty, headings, prefix ------------------------------------------------------------------


@pytest.mark.parametrize("markdown", ["", "   ", "\n\n\t\n", "```python\n\n```"])
def test_an_empty_page_has_no_chunks(markdown: str, count_tokens: Counter) -> None:
    assert chunk_markdown(markdown, count_tokens, breadcrumb="S > Page") == []


def test_a_page_of_headings_only_becomes_one_outline_chunk(count_tokens: Counter) -> None:
    chunks = chunk_markdown(
        "# Overview\n\n## Goals\n\n### Non-goals #\n", count_tokens, page_id="7", breadcrumb="S > P"
    )
    assert len(chunks) == 1
    assert chunks[0].heading_path == ()
    assert chunks[0].text == "# Overview\n## Goals\n### Non-goals"
    assert chunks[0].embed_text == "S > P\n# Overview\n## Goals\n### Non-goals"
    assert_invariants(chunks, count_tokens)


def test_sections_follow_the_heading_tree(count_tokens: Counter) -> None:
    markdown = "\n".join(
        [
            "Intro before any heading.",
            "# Install",
            "Get it.",
            "## Linux ##",
            "Use apt.",
            "### Debian",
            "Use apt-get.",
            "## Windows",
            "Use the installer.",
            "#hashtag is not a heading, nor is #7",
            "# C#",
            "Sharp.",
            "```bash",
            "# a comment, not a heading",
            "echo hi",
            "```",
        ]
    )
    chunks = chunk_markdown(markdown, count_tokens, breadcrumb="Eng > Tools")
    assert [(c.heading_path, c.text) for c in chunks] == [
        ((), "Intro before any heading."),
        (("Install",), "Get it."),
        (("Install", "Linux"), "Use apt."),
        (("Install", "Linux", "Debian"), "Use apt-get."),
        (
            ("Install", "Windows"),
            "Use the installer.\n#hashtag is not a heading, nor is #7",
        ),
        (("C#",), "Sharp.\n\n```bash\n# a comment, not a heading\necho hi\n```"),
    ]
    assert chunks[3].embed_text == "Eng > Tools > Install > Linux > Debian\nUse apt-get."
    assert_invariants(chunks, count_tokens)


def test_a_first_heading_repeating_the_title_is_not_doubled(count_tokens: Counter) -> None:
    chunks = chunk_markdown("# Runbook\nRestart it.", count_tokens, breadcrumb="Ops > Runbook")
    assert chunks[0].embed_text == "Ops > Runbook\nRestart it."
    assert chunks[0].heading_path == ("Runbook",)


def test_without_breadcrumb_or_headings_the_text_is_embedded_alone(count_tokens: Counter) -> None:
    chunks = chunk_markdown("Just text.", count_tokens)
    assert chunks[0].embed_text == "Just text."


def test_a_very_long_prefix_is_shortened_keeping_its_end(count_tokens: Counter) -> None:
    breadcrumb = " > ".join(f"Level {i} {words(8, i)}" for i in range(30)) + " > Leaf Page"
    chunks = chunk_markdown(sentences(60), count_tokens, breadcrumb=breadcrumb, max_tokens=256)
    prefix = chunks[0].embed_text.split("\n", 1)[0]
    assert prefix.startswith("…") and prefix.endswith("Leaf Page")
    assert count_tokens(prefix) <= 128
    assert_invariants(chunks, count_tokens)


def test_chunk_document_uses_the_breadcrumb_or_else_the_title(count_tokens: Counter) -> None:
    def document(breadcrumb: str) -> Document:
        return Document(
            page_id="42",
            space_key="ENG",
            type="page",
            title="Deploy guide",
            version=3,
            status="current",
            created_at=None,
            updated_at=datetime(2024, 1, 1, tzinfo=UTC),
            author=None,
            labels=(),
            ancestors=(),
            web_url="https://example.invalid/42",
            markdown="Ship it.",
            breadcrumb=breadcrumb,
        )

    with_crumb = chunk_document(document("Engineering > Deploy guide"), count_tokens)
    assert with_crumb[0].page_id == "42"
    assert with_crumb[0].embed_text == "Engineering > Deploy guide\nShip it."
    assert chunk_document(document(""), count_tokens)[0].embed_text == "Deploy guide\nShip it."


# --- packing ----------------------------------------------------------------------------------


def test_small_paragraphs_are_packed_up_to_the_target(count_tokens: Counter) -> None:
    markdown = "\n\n".join(words(30, i) for i in range(40))
    chunks = chunk_markdown(markdown, count_tokens, breadcrumb="S > P", target_tokens=200)
    assert_invariants(chunks, count_tokens)
    assert all(c.token_count <= 200 for c in chunks)
    # Greedy: adding the next paragraph would have passed the target.
    for chunk, following in zip(chunks, chunks[1:], strict=False):
        next_paragraph = following.text.split("\n\n")[0]
        assert count_tokens(chunk.embed_text + "\n\n" + next_paragraph) > 200
    assert non_space("".join(c.text for c in chunks)) == non_space(markdown)


def test_a_long_paragraph_is_cut_at_sentence_ends(count_tokens: Counter) -> None:
    paragraph = sentences(80)
    chunks = chunk_markdown(paragraph, count_tokens, breadcrumb="S > P")
    assert len(chunks) > 3
    assert_invariants(chunks, count_tokens)
    assert all(c.text.endswith(".") for c in chunks)
    assert " ".join(c.text for c in chunks) == paragraph


def test_a_sentence_longer_than_the_max_is_cut_between_words(count_tokens: Counter) -> None:
    text = words(1000)
    chunks = chunk_markdown(text, count_tokens, breadcrumb="S > P")
    assert_invariants(chunks, count_tokens)
    assert " ".join(c.text for c in chunks) == text


def test_a_code_block_is_never_cut_to_fill_a_chunk(count_tokens: Counter) -> None:
    code = "```python\n" + "\n".join(f"value_{i} = compute({i})" for i in range(12)) + "\n```"
    markdown = sentences(11) + "\n\n" + code + "\n\n" + sentences(3)
    chunks = chunk_markdown(markdown, count_tokens, breadcrumb="S > P", target_tokens=200)
    assert_invariants(chunks, count_tokens)
    assert sum(code in c.text for c in chunks) == 1
    assert all(c.text.count("```") in (0, 2) for c in chunks)


def test_blank_lines_inside_a_fence_do_not_split_it(count_tokens: Counter) -> None:
    code = "~~~yaml\nkey: 1\n\n\n# not a heading\nother: 2\n~~~"
    chunks = chunk_markdown("Config:\n\n" + code, count_tokens)
    assert chunks[0].text == "Config:\n\n" + code


def test_one_huge_code_block_is_split_on_lines_and_refenced(count_tokens: Counter) -> None:
    lines = [
        f"    result_{i} = transform(records[{i}], mode='fast')  # step {i}" for i in range(400)
    ]
    markdown = "```python\n" + "\n".join(lines) + "\n```"
    chunks = chunk_markdown(markdown, count_tokens, breadcrumb="S > P")
    assert len(chunks) > 5
    assert_invariants(chunks, count_tokens)
    rejoined: list[str] = []
    for chunk in chunks:
        body = chunk.text.split("\n")
        assert body[0] == "```python" and body[-1] == "```"
        rejoined.extend(body[1:-1])
    assert rejoined == lines


def test_a_code_line_longer_than_the_max_is_cut_into_fenced_runs(count_tokens: Counter) -> None:
    line = "payload = '" + "abcdefgh-" * 400 + "'"
    chunks = chunk_markdown(f"```js\n{line}\n```", count_tokens, breadcrumb="S > P")
    assert len(chunks) > 1
    assert_invariants(chunks, count_tokens)
    assert all(c.text.startswith("```js\n") and c.text.endswith("\n```") for c in chunks)
    assert "".join(c.text[len("```js\n") : -len("\n```")] for c in chunks) == line


def test_an_unclosed_fence_runs_to_the_end(count_tokens: Counter) -> None:
    chunks = chunk_markdown("Text\n\n```sh\nls\n# still code", count_tokens)
    assert [c.heading_path for c in chunks] == [()]
    assert chunks[0].text == "Text\n\n```sh\nls\n# still code\n```"


def test_a_small_table_stays_whole(count_tokens: Counter) -> None:
    table = "| Name | Port |\n|---|---|\n| api | 8080 |\n| db | 5432 |"
    chunks = chunk_markdown("Ports:\n" + table, count_tokens, breadcrumb="S > P")
    assert chunks[0].text == "Ports:\n\n" + table


def test_a_big_table_is_split_on_rows_with_its_header_repeated(count_tokens: Counter) -> None:
    header = ["| Service | Owner | Notes |", "|:---|---|---:|"]
    rows = [f"| svc-{i} | team-{i % 7} | {words(6, i)} |" for i in range(120)]
    chunks = chunk_markdown("\n".join(header + rows), count_tokens, breadcrumb="S > P")
    assert len(chunks) > 3
    assert_invariants(chunks, count_tokens)
    seen: list[str] = []
    for chunk in chunks:
        lines = chunk.text.split("\n")
        assert lines[:2] == header
        seen.extend(lines[2:])
    assert seen == rows


def test_cjk_text_without_spaces_is_cut_to_fit(count_tokens: Counter) -> None:
    text = "这是一个没有空格的中文段落用于测试分块" * 300  # no punctuation, no spaces
    chunks = chunk_markdown(text, count_tokens, breadcrumb="空间 > 页面")
    assert len(chunks) > 10
    assert_invariants(chunks, count_tokens)
    assert "".join(c.text for c in chunks) == text
    assert all(c.token_count > 150 for c in chunks[:-1]), "runs are filled, not tiny"


def test_cjk_sentences_are_cut_at_full_stops(count_tokens: Counter) -> None:
    text = "".join(f"第{i}句话说明系统如何部署。" for i in range(400))
    chunks = chunk_markdown(text, count_tokens)
    assert_invariants(chunks, count_tokens)
    assert all(c.text.endswith("。") for c in chunks)
    assert non_space("".join(c.text for c in chunks)) == text


def _page_of(sections: int, seed: int = 5) -> tuple[str, list[str]]:
    rng = random.Random(seed)  # sentences that do not repeat, as on a real page
    parts = []
    for i in range(sections * 10):
        if i % 10 == 0:
            parts.append(f"## Section {i // 10}")
        parts.append(" ".join(" ".join(rng.choices(WORDS, k=12)) + "." for _ in range(9)))
    parts.append("```python\n" + "\n".join(f"x_{i} = {i}" for i in range(40)) + "\n```")
    return "\n\n".join(parts), parts


def _cpu_seconds_to_chunk(markdown: str, count_tokens: Counter) -> float:
    start = time.process_time()
    chunk_markdown(markdown, count_tokens, breadcrumb="Space > Big page")
    return time.process_time() - start


def test_a_10k_word_page_is_chunked_completely_in_linear_time(count_tokens: Counter) -> None:
    markdown, parts = _page_of(10)
    assert len(markdown.split()) > 10_000
    chunks = chunk_markdown(markdown, count_tokens, breadcrumb="Space > Big page")
    # How fast is bench's to say; a test can say the cost is linear: 8x the words, and a
    # quadratic step anywhere would show as ~64x. CPU time, the best of three on each side.
    small = min(_cpu_seconds_to_chunk(_page_of(1)[0], count_tokens) for _ in range(3))
    large = min(_cpu_seconds_to_chunk(_page_of(8)[0], count_tokens) for _ in range(3))
    assert large < max(small, 0.002) * 16, (small, large)
    assert_invariants(chunks, count_tokens)
    body = "\n".join(p for p in parts if not p.startswith("## "))
    assert non_space("".join(c.text for c in chunks)) == non_space(body)


# --- limits and tokenizers --------------------------------------------------------------------


def test_the_same_markdown_gives_the_same_chunks(count_tokens: Counter) -> None:
    markdown = "# A\n\n" + sentences(50) + "\n\n## B\n\n```go\nfmt.Println(1)\n```"
    first = chunk_markdown(markdown, count_tokens, page_id="1", breadcrumb="S > P")
    second = chunk_markdown(markdown, count_tokens, page_id="1", breadcrumb="S > P")
    assert first == second
    assert first[0].content_hash == (
        "c1:" + hashlib.sha256(first[0].embed_text.encode("utf-8")).hexdigest()
    )


def test_a_changed_breadcrumb_changes_the_hash(count_tokens: Counter) -> None:
    before = chunk_markdown("Same text.", count_tokens, breadcrumb="S > Old title")
    after = chunk_markdown("Same text.", count_tokens, breadcrumb="S > New title")
    assert before[0].text == after[0].text
    assert before[0].content_hash != after[0].content_hash


def test_limits_hold_for_a_tokenizer_whose_counts_do_not_add_up() -> None:
    """Roughly one token per 3 characters plus 2 special tokens: sums of parts overestimate and
    underestimate, so the packer's verification and bisection must keep the limits."""

    def count(text: str) -> int:
        return 2 + (len(text) + 2) // 3

    markdown = "\n\n".join([sentences(40), words(500), "| a |\n|---|\n| b |", "x" * 3000])
    chunks = chunk_markdown(markdown, count, breadcrumb="S > P", target_tokens=60, max_tokens=80)
    assert chunks
    for chunk in chunks:
        assert chunk.token_count == count(chunk.embed_text) <= 80


@pytest.mark.parametrize(
    ("target", "maximum"), [(200, 8), (0, 256), (-5, 256)], ids=["tiny-max", "zero", "negative"]
)
def test_impossible_limits_are_refused(target: int, maximum: int, count_tokens: Counter) -> None:
    with pytest.raises(InvalidInput):
        chunk_markdown("text", count_tokens, target_tokens=target, max_tokens=maximum)


def test_a_target_above_the_max_is_capped(count_tokens: Counter) -> None:
    chunks = chunk_markdown(sentences(100), count_tokens, target_tokens=1000, max_tokens=128)
    assert_invariants(chunks, count_tokens, max_tokens=128)


_line = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=80),
    st.sampled_from(["", "# Head", "## Sub", "```py", "```", "~~~", "| a | b |", "- item"]),
    st.builds(lambda n: words(n), st.integers(0, 400)),
)


@given(lines=st.lists(_line, max_size=40), breadcrumb=st.sampled_from(["", "S > P"]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_markdown_keeps_the_limits_and_is_deterministic(
    lines: list[str], breadcrumb: str, count_tokens: Counter
) -> None:
    markdown = "\n".join(lines)
    chunks = chunk_markdown(
        markdown, count_tokens, breadcrumb=breadcrumb, max_tokens=64, target_tokens=48
    )
    assert_invariants(chunks, count_tokens, max_tokens=64)
    assert chunks == chunk_markdown(
        markdown, count_tokens, breadcrumb=breadcrumb, max_tokens=64, target_tokens=48
    )
