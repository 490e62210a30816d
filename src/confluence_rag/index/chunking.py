"""Split a page's Markdown into chunks sized by the embedding model's own tokenizer.

Pure and deterministic: the same Markdown, breadcrumb and limits always give the same chunks and
the same ``content_hash``, so an unchanged chunk is never embedded twice.

How a page is cut:

1. Sections. ATX headings (``#`` .. ``######``, outside fenced code) start sections; each
   section carries its heading path. Heading lines are not repeated in the chunk ``text``: they
   live in ``heading_path`` and in the prefix of ``embed_text``. Setext headings and indented
   code are read as ordinary text.
2. Blocks. A section's body is cut into paragraphs (at blank lines), tables (runs of ``|`` lines)
   and fenced code blocks (atomic, blank lines included).
3. Packing. Blocks are packed greedily into chunks of at most ``target_tokens``; a block bigger
   than the target but within ``max_tokens`` becomes a chunk of its own. Counts are always of the
   exact ``embed_text`` (``breadcrumb > heading path`` + newline + text), so the prefix counts.
4. Over-long blocks. A code block over the max is split on lines and every piece is re-fenced with
   its language; a table is split on rows with its header repeated; prose is split on lines, then
   sentences, then words, then characters (CJK text has no spaces, so the last step matters).

No ``embed_text`` ever exceeds ``max_tokens``. A very long prefix (deep tree, long titles) is
shortened to half of ``max_tokens``, keeping its end (page title and nearest heading).

Edge cases, decided: an empty (or whitespace-only) page gives no chunks: ``min_page_chars`` skips
such pages upstream and there is nothing to find in them. A page of headings only gives one chunk
whose text is its outline (the heading lines), so it stays findable by its headings.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from confluence_rag.content.models import Document
from confluence_rag.errors import InvalidInput
from confluence_rag.index.models import Chunk

TokenCounter = Callable[[str], int]

# Bump when what is embedded changes meaning (not merely its cut), so old vectors are not reused.
CHUNK_HASH_VERSION = "c1"
MIN_MAX_TOKENS = 16

_FENCE_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>.*?)[ \t]*$")
_HEADING = re.compile(r"^ {0,3}(?P<hashes>#{1,6})(?:[ \t]+(?P<text>.*?))?[ \t]*$")
_HEADING_CLOSE = re.compile(r"(?:^|[ \t]+)#+$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
# Western sentence ends need following whitespace; CJK ones do not (no spaces in CJK text).
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？；])\s*")
_WHITESPACE = re.compile(r"\s+")

# Prose split levels, coarsest first; a piece that alone exceeds the max goes one level finer.
_PARAGRAPH, _LINES, _SENTENCES, _WORDS, _CHARS = range(5)
_LEVEL_SEPARATOR = {_LINES: "\n", _SENTENCES: " ", _WORDS: " ", _CHARS: ""}
_BLOCK_SEPARATOR = "\n\n"
_PREFIX_SEPARATOR = " > "
_ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class _Block:
    kind: Literal["text", "table", "code"]
    lines: tuple[str, ...]
    fence: str = ""  # code only: the opening marker, reused so code containing ``` stays valid
    info: str = ""  # code only: the info string (language)

    def render(self) -> str:
        if self.kind == "code":
            return _fenced(self.fence, self.info, self.lines)
        return "\n".join(self.lines)


@dataclass(slots=True)
class _Section:
    path: tuple[str, ...]
    blocks: list[_Block]


@dataclass(frozen=True, slots=True)
class _Unit:
    """A piece to pack. ``level`` says how finely prose has been split already (atomic pieces of
    code and tables can still be split as prose in the pathological one-line-too-long case)."""

    text: str
    separator: str  # joins it to the previous unit of the same chunk
    level: int


def chunk_document(
    document: Document,
    count_tokens: TokenCounter,
    target_tokens: int = 200,
    max_tokens: int = 256,
) -> list[Chunk]:
    """Chunks of a converted page; the breadcrumb (or, lacking one, the title) leads each
    ``embed_text``."""
    return chunk_markdown(
        document.markdown,
        count_tokens,
        page_id=document.page_id,
        breadcrumb=document.breadcrumb or document.title,
        target_tokens=target_tokens,
        max_tokens=max_tokens,
    )


def chunk_markdown(
    markdown: str,
    count_tokens: TokenCounter,
    *,
    page_id: str = "",
    breadcrumb: str = "",
    target_tokens: int = 200,
    max_tokens: int = 256,
) -> list[Chunk]:
    """Chunks of one Markdown text. ``count_tokens`` must count what the model reads (the
    embedders' ``count_tokens`` includes the special tokens), and must grow with the text."""
    if max_tokens < MIN_MAX_TOKENS:
        raise InvalidInput(f"max_tokens must be at least {MIN_MAX_TOKENS}, got {max_tokens}")
    if target_tokens < 1:
        raise InvalidInput(f"target_tokens must be positive, got {target_tokens}")
    target_tokens = min(target_tokens, max_tokens)

    chunks: list[Chunk] = []
    for section in _sections(markdown):
        prefix = _prefix(breadcrumb, section.path, count_tokens, max_tokens // 2)
        packer = _Packer(prefix, count_tokens, target_tokens, max_tokens)
        for text, token_count in packer.pack(section.blocks):
            embed_text = _embed_text(prefix, text)
            chunks.append(
                Chunk(
                    page_id=page_id,
                    ordinal=len(chunks),
                    heading_path=section.path,
                    text=text,
                    embed_text=embed_text,
                    content_hash=content_hash(embed_text),
                    token_count=token_count,
                )
            )
    return chunks


def content_hash(embed_text: str) -> str:
    """Versioned hash of what the model sees: equal hashes mean a stored vector can be reused."""
    digest = hashlib.sha256(embed_text.encode("utf-8")).hexdigest()
    return f"{CHUNK_HASH_VERSION}:{digest}"


# --- parsing ---------------------------------------------------------------------------------


def _sections(markdown: str) -> list[_Section]:
    lines = markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    stack: list[tuple[int, str]] = []
    headings: list[str] = []
    sections = [_Section((), [])]
    paragraph: list[str] = []

    def flush() -> None:
        sections[-1].blocks.extend(_paragraph_blocks(paragraph))
        paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE_OPEN.match(line)
        if fence and not (fence["fence"][0] == "`" and "`" in fence["info"]):
            flush()
            body, i = _read_fence(lines, i + 1, fence["fence"])
            if any(code_line.strip() for code_line in body):
                sections[-1].blocks.append(
                    _Block("code", tuple(body), fence=fence["fence"], info=fence["info"])
                )
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            level = len(heading["hashes"])
            title = _HEADING_CLOSE.sub("", heading["text"] or "").strip()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            headings.append(f"{heading['hashes']} {title}".rstrip())
            sections.append(_Section(tuple(t for _, t in stack if t), []))
        elif line.strip():
            paragraph.append(line.rstrip())
        else:
            flush()
        i += 1
    flush()

    kept = [section for section in sections if section.blocks]
    if not kept and headings:
        return [_Section((), [_Block("text", tuple(headings))])]
    return kept


def _read_fence(lines: list[str], start: int, fence: str) -> tuple[list[str], int]:
    """Lines up to the closing fence (same character, at least as long); an unclosed fence runs
    to the end of the page, as in CommonMark. Returns the body and the index after the fence."""
    closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
    body: list[str] = []
    i = start
    while i < len(lines):
        if closing.match(lines[i]):
            return body, i + 1
        body.append(lines[i])
        i += 1
    return body, i


def _paragraph_blocks(lines: list[str]) -> list[_Block]:
    """A paragraph, split where it switches between table rows and prose."""
    blocks: list[_Block] = []
    run: list[str] = []
    run_is_table = False
    for line in lines:
        is_table = line.lstrip().startswith("|")
        if run and is_table != run_is_table:
            blocks.append(_Block("table" if run_is_table else "text", tuple(run)))
            run = []
        run.append(line)
        run_is_table = is_table
    if run:
        blocks.append(_Block("table" if run_is_table else "text", tuple(run)))
    return blocks


def _fenced(fence: str, info: str, lines: tuple[str, ...] | list[str]) -> str:
    return f"{fence}{info}\n" + "\n".join(lines) + f"\n{fence}"


# --- prefix ----------------------------------------------------------------------------------


def _prefix(breadcrumb: str, path: tuple[str, ...], count_tokens: TokenCounter, limit: int) -> str:
    parts: list[str] = []
    for part in (breadcrumb.strip(), *path):
        # A page's first heading often repeats its title, already the breadcrumb's last part.
        if part and not (parts and parts[-1].rsplit(_PREFIX_SEPARATOR, 1)[-1] == part):
            parts.append(part)
    prefix = _PREFIX_SEPARATOR.join(parts)
    if not prefix or count_tokens(prefix) <= limit:
        return prefix
    words = prefix.split()

    def fits(n: int) -> bool:
        return count_tokens(_ELLIPSIS + " ".join(words[len(words) - n :])) <= limit

    keep = _largest_fitting(len(words), fits, guess=limit // 2)
    if keep == 0:
        return ""
    return _ELLIPSIS + " ".join(words[len(words) - keep :])


def _embed_text(prefix: str, text: str) -> str:
    return f"{prefix}\n{text}" if prefix else text


# --- packing ---------------------------------------------------------------------------------


class _Packer:
    """Greedy packing of one section's blocks under exact token limits.

    Tokenizing costs ~2 us a token here, so each piece is counted once (with the prefix,
    memoised for this section), pieces are packed by summing what each adds, and only a chunk
    of several pieces is counted again as a whole to verify. Sums are exact for a word-piece
    tokenizer (whitespace between pieces adds no tokens), so a page costs one to two passes of
    the tokenizer; where sums are off, the verification fails and bisection over exact counts
    takes over, so the limits hold for any tokenizer whose counts grow with the text.
    """

    def __init__(
        self, prefix: str, count_tokens: TokenCounter, target_tokens: int, max_tokens: int
    ) -> None:
        self.prefix = prefix
        self.count_tokens = count_tokens
        self.target = target_tokens
        self.max = max_tokens
        self._memo: dict[str, int] = {}
        self.base = self.count("")  # the prefix and special tokens, in every chunk once

    def count(self, text: str) -> int:
        """Exact tokens of the embed text for ``text``."""
        return self.count_tokens(_embed_text(self.prefix, text))

    def size(self, text: str) -> int:
        """Tokens ``text`` adds to a chunk: exact for a chunk of this text alone (``base +
        size``), an estimate for its share of a longer one."""
        size = self._memo.get(text)
        if size is None:
            size = self._memo[text] = self.count(text) - self.base
        return size

    def too_big(self, text: str) -> bool:
        """Over the max alone? Every whitespace-separated word is at least one token, so a text
        of more words than the max is too big without tokenizing it."""
        if text.count(" ") + text.count("\n") >= self.max and len(text.split()) > self.max:
            return True
        return self.base + self.size(text) > self.max

    def pack(self, blocks: list[_Block]) -> list[tuple[str, int]]:
        units: list[_Unit] = []
        for block in blocks:
            units.extend(self._block_units(block))

        def size_at(j: int) -> int:
            return self.size(units[j].text)

        def exact(start: int, k: int) -> int:
            return self.count(_join(units[start : start + k]))

        out: list[tuple[str, int]] = []
        i = 0
        while i < len(units):
            if self.too_big(units[i].text):
                units[i : i + 1] = self._split_prose(units[i])
                continue
            k, tokens = self._take(i, len(units), self.base, size_at, exact, single_exact=True)
            out.append((_join(units[i : i + k]), tokens))
            i += k
        return out

    def _take(
        self,
        start: int,
        end: int,
        base: int,
        size_at: Callable[[int], int],
        exact: Callable[[int, int], int],
        *,
        single_exact: bool = False,
    ) -> tuple[int, int]:
        """How many pieces from ``start`` (before ``end``) form the next chunk, and its exact
        count. The first piece always goes in (the caller checked it fits the max);
        ``single_exact`` says ``base + size_at(start)`` is already that piece's exact count."""
        total, k = base + size_at(start), 1
        while start + k < end:
            grown = total + size_at(start + k)
            if grown > self.target:
                break
            total, k = grown, k + 1
        if k == 1 and single_exact:
            return 1, total
        tokens = exact(start, k)
        if tokens <= self.target or k == 1:
            return k, tokens
        counts: dict[int, int] = {}

        def fits(n: int) -> bool:
            counts[n] = exact(start, n)
            return counts[n] <= self.target

        n = _largest_fitting(k - 1, fits, guess=k - 1)
        if n == 0:
            return 1, counts[1] if 1 in counts else exact(start, 1)
        return n, counts[n]

    def _block_units(self, block: _Block) -> list[_Unit]:
        text = block.render()
        if block.kind == "text" or not self.too_big(text):
            # Prose is split lazily, only if it turns out too big once it leads a chunk.
            return [_Unit(text, _BLOCK_SEPARATOR, _PARAGRAPH)]
        if block.kind == "code":
            return self._split_code(block)
        return self._split_table(block)

    def _split_code(self, block: _Block) -> list[_Unit]:
        """Line groups, each re-fenced with the block's language; a line too long even alone
        is cut into character runs, each fenced too."""

        def wrap(lines: list[str]) -> str:
            return _fenced(block.fence, block.info, lines)

        pieces: list[str] = []
        for group, tokens in self._line_groups(list(block.lines), wrap):
            if tokens > self.max:
                pieces.extend(wrap([run]) for run in self._char_runs(group[0], wrap))
            else:
                pieces.append(wrap(group))
        return [_Unit(piece, _BLOCK_SEPARATOR, _CHARS) for piece in pieces]

    def _split_table(self, block: _Block) -> list[_Unit]:
        """Row groups under the repeated header; a row too long even alone becomes prose."""
        lines = list(block.lines)
        has_header = len(lines) > 2 and bool(_TABLE_SEPARATOR.match(lines[1]))
        header = lines[:2] if has_header else []
        rows = lines[2:] if has_header else lines

        def wrap(group: list[str]) -> str:
            return "\n".join(header + group)

        units: list[_Unit] = []
        for group, tokens in self._line_groups(rows, wrap):
            if tokens > self.max:
                units.append(_Unit(group[0], _BLOCK_SEPARATOR, _LINES))
            else:
                units.append(_Unit(wrap(group), _BLOCK_SEPARATOR, _CHARS))
        return units

    def _line_groups(
        self, lines: list[str], wrap: Callable[[list[str]], str]
    ) -> list[tuple[list[str], int]]:
        """Consecutive lines packed to the target inside ``wrap``, with exact counts. A group
        of one line may exceed the max: the caller splits it further."""
        base = self.count(wrap([]))

        def size_at(j: int) -> int:
            return self.size(lines[j])

        def exact(start: int, k: int) -> int:
            return self.count(wrap(lines[start : start + k]))

        groups: list[tuple[list[str], int]] = []
        i = 0
        while i < len(lines):
            k, tokens = self._take(i, len(lines), base, size_at, exact)
            groups.append((lines[i : i + k], tokens))
            i += k
        return groups

    def _char_runs(self, text: str, wrap: Callable[[list[str]], str]) -> list[str]:
        """Consecutive runs of ``text``, each the longest whose wrapped form fits the target.
        Rare (one line or word too long for a chunk), so searched with exact counts; capped at
        16 characters a token so a huge run is never tokenized whole."""
        runs: list[str] = []
        guess = self.target
        i = 0
        while i < len(text):
            upper = min(len(text) - i, self.target * 16)

            def fits(n: int, start: int = i) -> bool:
                return self.count(wrap([text[start : start + n]])) <= self.target

            n = _largest_fitting(upper, fits, guess)
            if n == 0:
                if self.count(wrap([text[i]])) > self.max:
                    raise InvalidInput(
                        f"max_tokens={self.max} leaves no room for text after the prefix"
                    )
                n = 1
            runs.append(text[i : i + n])
            i += n
            guess = n
        return runs

    def _split_prose(self, unit: _Unit) -> list[_Unit]:
        """The unit's pieces at the next level that actually divides it."""
        for level in range(unit.level + 1, _CHARS + 1):
            if level == _CHARS:
                pieces = self._char_runs(unit.text, lambda lines: lines[0])
            else:
                pieces = _prose_pieces(unit.text, level)
            if len(pieces) > 1:
                separator = _LEVEL_SEPARATOR[level]
                return [
                    _Unit(piece, unit.separator if n == 0 else separator, level)
                    for n, piece in enumerate(pieces)
                ]
        raise InvalidInput(f"cannot split text to fit max_tokens={self.max}")


def _prose_pieces(text: str, level: int) -> list[str]:
    if level == _LINES:
        return [line for line in text.split("\n") if line.strip()]
    if level == _SENTENCES:
        return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    if level == _WORDS:
        return [w for w in _WHITESPACE.split(text) if w]
    return [text]


def _join(units: list[_Unit]) -> str:
    if not units:
        return ""
    return units[0].text + "".join(u.separator + u.text for u in units[1:])


def _largest_fitting(upper: int, fits: Callable[[int], bool], guess: int) -> int:
    """The largest k in 0..upper with ``fits(k)``, for a ``fits`` that is true up to some k and
    false after. Gallops up from ``guess`` (the previous answer, usually close), then bisects."""
    if upper <= 0:
        return 0
    probe = min(max(guess, 1), upper)
    if fits(probe):
        lo, step = probe, 1
        while lo < upper:
            candidate = min(lo + step, upper)
            if not fits(candidate):
                hi = candidate
                break
            lo, step = candidate, step * 2
        else:
            return lo
    else:
        lo, hi = 0, probe
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo
