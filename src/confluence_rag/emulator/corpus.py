"""A deterministic generator of realistic Confluence spaces (the emulator's sample data).

``generate_space(seed, pages)`` returns a space with a page tree (homepage at the root, depth up
to ~8), blog posts, labels, several authors, created/modified timestamps over three years with
version numbers, a few trashed, archived and near-empty (< 100 characters) pages, attachments
(images the bodies show, plus some documents) and storage-format bodies from `bodies.py` whose
length follows a log-normal law (median ~600 words, long tail capped at 10,000).

The same seed, size and space key give byte-identical output, so benchmarks and tests can
regenerate a space instead of storing it. Most pages with text carry a unique marker phrase in
their first code block (``ContentRecord.marker``): search tests look a page up by its marker.
Other benchmarks may call ``generate_space`` directly to get pages and bodies.
"""

from __future__ import annotations

import math
import random
import struct
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from confluence_rag.emulator.bodies import BodyBuilder, LinkTarget, marker_phrase
from confluence_rag.emulator.records import (
    AttachmentRecord,
    ContentRecord,
    ContentStatus,
    ContentType,
    SpaceRecord,
    User,
)

# Timestamps are spread over the three years before this instant: fixed, so a seed always gives
# the same space whatever day it runs, and every generated page is older than "now".
GENERATED_UNTIL = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
GENERATED_SPAN = timedelta(days=3 * 365)

MEDIAN_WORDS = 600
MAX_WORDS = 10_000

FIRST_NAMES = ("Ada", "Bram", "Chen", "Dana", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas")
LAST_NAMES = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Brennan")

TITLE_KINDS = (
    "Runbook", "Design", "How-to", "Postmortem", "Onboarding", "Architecture", "FAQ", "Guide",
    "Checklist", "Meeting notes", "Decision record", "Playbook", "Reference", "Troubleshooting",
)  # fmt: skip
TITLE_SYSTEMS = (
    "Billing", "Search", "Auth", "Payments", "Gateway", "Scheduler", "Inventory", "Reporting",
    "Notifications", "Data warehouse", "CI pipeline", "Mobile app", "Web frontend", "Ledger",
    "Identity", "Storage", "Messaging", "Analytics", "Recommendations", "Checkout",
)  # fmt: skip
TITLE_ASPECTS = (
    "deployment", "monitoring", "on-call", "migration", "rate limits", "backups", "access",
    "caching", "schema", "API", "alerts", "capacity", "testing", "releases", "security review",
)  # fmt: skip
LABELS = (
    "runbook", "architecture", "how-to", "onboarding", "postmortem", "security", "api",
    "deprecated", "draft", "backend", "frontend", "infra", "data", "release", "faq", "team",
    "decision", "oncall", "performance", "compliance",
)  # fmt: skip


def tiny_png(seed_text: str) -> bytes:
    """A valid 1x1 PNG whose colour depends on ``seed_text`` (distinct bytes per image)."""
    digest = zlib.crc32(seed_text.encode())
    pixel = bytes([0, digest & 0xFF, (digest >> 8) & 0xFF, (digest >> 16) & 0xFF])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixel))
        + chunk(b"IEND", b"")
    )


def generate_users(seed: int, count: int = 8) -> list[User]:
    """Authors of generated content, with Cloud account ids and Data Center user keys."""
    rng = random.Random(f"users:{seed}")
    users: list[User] = []
    for index in range(count):
        first = FIRST_NAMES[index % len(FIRST_NAMES)]
        last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        users.append(
            User(
                account_id="5" + "".join(rng.choice("0123456789abcdef") for _ in range(23)),
                display_name=f"{first} {last}",
                email=f"{first.lower()}.{last.lower()}@example.com",
                username=f"{first[0].lower()}{last.lower()}",
                user_key="".join(rng.choice("0123456789abcdef") for _ in range(32)),
            )
        )
    return users


@dataclass(slots=True)
class GeneratedSpace:
    space: SpaceRecord
    contents: list[ContentRecord] = field(default_factory=list)
    attachments: list[AttachmentRecord] = field(default_factory=list)

    @property
    def markers(self) -> dict[str, str]:
        """Page id -> the unique phrase in its first code block."""
        return {c.id: c.marker for c in self.contents if c.marker is not None}


def _log_normal_words(rng: random.Random) -> int:
    # sigma 1.0 around ln(600): p90 ~2,200 words, p99 ~6,100; a real wiki's long tail
    words = int(math.exp(rng.gauss(math.log(MEDIAN_WORDS), 1.0)))
    return max(20, min(MAX_WORDS, words))


def _ms(moment: datetime) -> datetime:
    """Confluence reports milliseconds; keep generated instants at that precision."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def generate_space(
    seed: int,
    pages: int,
    *,
    space_key: str = "DEMO",
    space_name: str | None = None,
    space_id: int = 98305,
    first_id: int = 100001,
    first_attachment_id: int = 500001,
    users: list[User] | None = None,
    flavour: Literal["cloud", "datacenter"] = "cloud",
) -> GeneratedSpace:
    """Generate a space of ``pages`` content items (pages and ~8% blog posts).

    ``pages // 100`` items are trashed and as many archived; ``pages // 50`` are near-empty.
    Spaces under 100 items therefore list exactly ``pages`` current items. Ids are consecutive
    from ``first_id``; ``flavour`` picks how bodies mention users (Cloud ``ri:account-id``,
    Data Center ``ri:userkey``).
    """
    rng = random.Random(f"space:{seed}:{space_key}")
    authors = users if users is not None else generate_users(seed)
    if flavour == "cloud":
        user_refs = [f'ri:account-id="{u.account_id}"' for u in authors]
    else:
        user_refs = [f'ri:userkey="{u.user_key}"' for u in authors]
    builder = BodyBuilder(rng=rng, user_refs=user_refs, space_key=space_key)
    space = SpaceRecord(
        id=space_id,
        key=space_key,
        name=space_name or f"{space_key.title()} Space",
        description=f"Generated sample space {space_key} (seed {seed}).",
        created_at=_ms(GENERATED_UNTIL - GENERATED_SPAN - timedelta(days=30)),
        author_id=authors[0].account_id,
    )
    result = GeneratedSpace(space=space)
    if pages == 0:
        return result

    special = _special_indexes(rng, pages)
    depth: dict[str, int] = {}
    page_ids: list[str] = []
    titles: set[str] = set()
    attachment_id = first_attachment_id
    for index in range(pages):
        content_id = str(first_id + index)
        is_home = index == 0
        ctype: ContentType = "blogpost" if not is_home and rng.random() < 0.08 else "page"
        title = _title(rng, ctype, index, titles, space_key, is_home)
        parent_id = None if ctype == "blogpost" else _parent(rng, page_ids, depth)
        if ctype == "page":
            depth[content_id] = 0 if parent_id is None else depth[parent_id] + 1
            page_ids.append(content_id)
        created = _ms(GENERATED_UNTIL - GENERATED_SPAN * rng.random())
        version = 1 + min(29, int(rng.expovariate(0.45)))
        updated = (
            created if version == 1 else _ms(created + (GENERATED_UNTIL - created) * rng.random())
        )
        creator = rng.choice(authors)
        editor = creator if version == 1 else rng.choice(authors)
        near_empty = index in special["empty"]
        target = rng.randint(0, 10) if near_empty else _log_normal_words(rng)
        marker = marker_phrase(rng, space_key, index)
        with_code = not near_empty and rng.random() < 0.85
        built = builder.build(target, marker if with_code else None, with_code)
        status: ContentStatus = "current"
        if index in special["trashed"]:
            status = "trashed"
        elif index in special["archived"]:
            status = "archived"
        record = ContentRecord(
            id=content_id,
            type=ctype,
            status=status,
            title=title,
            space_key=space_key,
            body=built.storage,
            created_at=created,
            created_by=creator.account_id,
            updated_at=updated,
            updated_by=editor.account_id,
            version=version,
            minor_edit=version > 1 and rng.random() < 0.2,
            parent_id=parent_id,
            labels=sorted(set(rng.sample(LABELS, rng.choice((0, 1, 1, 2, 2, 3, 4))))),
            position=index,
            marker=built.marker,
        )
        result.contents.append(record)
        files = [(name, "image/png", tiny_png(f"{content_id}/{name}")) for name in built.images]
        if rng.random() < 0.05:
            text = f"Notes for {title}\n{builder.sentence(30)}\n".encode()
            files.append(("notes.txt", "text/plain", text))
        for name, media_type, data in files:
            result.attachments.append(
                AttachmentRecord(
                    id=f"att{attachment_id}",
                    container_id=content_id,
                    title=name,
                    media_type=media_type,
                    data=data,
                    created_at=updated,
                    author_id=editor.account_id,
                )
            )
            attachment_id += 1
        builder.link_targets.append(LinkTarget(title=title, space_key=space_key))
    space.homepage_id = str(first_id)
    return result


def _special_indexes(rng: random.Random, pages: int) -> dict[str, set[int]]:
    """Which items are trashed, archived or near-empty; never the homepage."""
    candidates = list(range(1, pages))
    rng.shuffle(candidates)
    trashed = pages // 100
    archived = pages // 100
    empty = pages // 50
    return {
        "trashed": set(candidates[:trashed]),
        "archived": set(candidates[trashed : trashed + archived]),
        "empty": set(candidates[trashed + archived : trashed + archived + empty]),
    }


def _parent(rng: random.Random, page_ids: list[str], depth: dict[str, int]) -> str | None:
    if not page_ids:
        return None
    home = page_ids[0]
    if rng.random() < 0.15:
        return home
    # recent pages are likelier parents: sections grow in bursts, as real wikis do
    lo = max(0, len(page_ids) - 40)
    candidate = page_ids[rng.randrange(lo, len(page_ids))]
    return home if depth[candidate] >= 7 else candidate


def _title(
    rng: random.Random, ctype: str, index: int, taken: set[str], space_key: str, is_home: bool
) -> str:
    if is_home:
        title = f"{space_key.title()} Home"
    elif ctype == "blogpost":
        day = (GENERATED_UNTIL - timedelta(days=rng.randrange(1000))).date().isoformat()
        title = f"{day}: {rng.choice(TITLE_SYSTEMS)} update"
    else:
        title = f"{rng.choice(TITLE_SYSTEMS)} {rng.choice(TITLE_ASPECTS)} {rng.choice(TITLE_KINDS)}"
    if title in taken:
        # titles are unique per space in Confluence; disambiguate like people do
        title = f"{title} ({index})"
    taken.add(title)
    return title
