"""Load spaces from folders of JSON files in the v1 content shape (what ``GET
/rest/api/content/{id}?expand=body.storage,version,history,ancestors,metadata.labels,space``
returns), so real exported pages, and the sample site we ship, can be served.

- ``load_pages_dir``: one folder, one space. A file holds one content object or an envelope
  with ``results``. Missing fields get defaults; users named in ``version.by`` or
  ``history.createdBy`` are added to ``users``. Files are read in name order.
- ``load_site``: a site folder: ``site.json`` (its spaces and users) and one such folder per
  space key. ``SAMPLE_SITE`` is the one the emulator serves by default: an invented company's
  Engineering and Operations spaces, written for the demo and for ``bench/wiki_eval.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluence_rag.emulator.config import EmulatorConfig
from confluence_rag.emulator.corpus import GENERATED_UNTIL, GeneratedSpace
from confluence_rag.emulator.records import ContentRecord, SpaceRecord, User
from confluence_rag.errors import InvalidInput

SAMPLE_SITE = Path(__file__).parent / "sample_site"
FIRST_SPACE_ID = 98305


def _when(text: Any) -> datetime:
    if not isinstance(text, str) or not text:
        return GENERATED_UNTIL
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidInput(f"bad timestamp {text!r} in a page file") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _user(raw: Any, users: dict[str, User]) -> str:
    if not isinstance(raw, dict):
        return next(iter(users))
    account = str(raw.get("accountId") or raw.get("userKey") or raw.get("username") or "unknown")
    if account not in users:
        name = str(raw.get("displayName") or raw.get("publicName") or account)
        users[account] = User(
            account_id=account,
            display_name=name,
            email=str(raw.get("email") or f"{account}@example.com"),
            username=str(raw.get("username") or account),
            user_key=str(raw.get("userKey") or account),
        )
    return account


def _items(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidInput(f"cannot read page file {path}: {error}") from error
    items = data.get("results") if isinstance(data, dict) and "results" in data else [data]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidInput(f"{path} holds neither a content object nor an envelope of them")
    return items


def read_site_manifest(folder: Path) -> dict[str, Any]:
    """``site.json`` of a site folder: ``spaces`` (key, name, description, homepage) and
    ``users`` (v1 user objects). Checked here so a broken site fails before it is served."""
    path = Path(folder) / "site.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidInput(f"cannot read the site manifest {path}: {error}") from error
    spaces = manifest.get("spaces") if isinstance(manifest, dict) else None
    if not isinstance(spaces, list) or not spaces:
        raise InvalidInput(f"{path} names no spaces")
    for space in spaces:
        if not isinstance(space, dict) or not space.get("key") or not space.get("name"):
            raise InvalidInput(f"{path}: every space needs a key and a name: {space!r}")
        if not (Path(folder) / str(space["key"])).is_dir():
            raise InvalidInput(f"{path}: space {space['key']} has no folder")
    return manifest


def site_config(folder: Path = SAMPLE_SITE, **options: Any) -> EmulatorConfig:
    """An emulator config serving the site in ``folder`` (the sample site by default): its first
    space is the main one (the restricted user may not read it), the others are extra spaces."""
    spaces = read_site_manifest(folder)["spaces"]
    main, *others = spaces
    return EmulatorConfig(
        site_dir=Path(folder),
        space_key=str(main["key"]),
        space_name=str(main["name"]),
        extra_spaces={str(space["key"]): 0 for space in others},
        pages=0,
        **options,
    )


def load_site(folder: Path, users: dict[str, User]) -> list[GeneratedSpace]:
    """Every space of a site folder, in the manifest's order; its users join ``users``."""
    manifest = read_site_manifest(folder)
    for raw in manifest.get("users") or []:
        _user(raw, users)
    loaded = []
    for number, entry in enumerate(manifest["spaces"]):
        key = str(entry["key"])
        space = load_pages_dir(
            Path(folder) / key, key, str(entry["name"]), users, FIRST_SPACE_ID + number * 65536
        )
        space.space.description = str(entry.get("description") or "")
        homepage = str(entry.get("homepage") or "")
        if homepage:
            if homepage not in {c.id for c in space.contents}:
                raise InvalidInput(f"space {key}: its homepage {homepage} is not in its folder")
            space.space.homepage_id = homepage
        loaded.append(space)
    return loaded


def load_pages_dir(
    folder: Path,
    space_key: str,
    space_name: str,
    users: dict[str, User],
    space_id: int = FIRST_SPACE_ID,
) -> GeneratedSpace:
    """Read every ``*.json`` file of ``folder`` into one space keyed ``space_key``."""
    space = SpaceRecord(id=space_id, key=space_key, name=space_name, created_at=GENERATED_UNTIL)
    result = GeneratedSpace(space=space)
    seen: set[str] = set()
    for path in sorted(Path(folder).glob("*.json")):
        for raw in _items(path):
            record = _record(raw, space_key, users, len(result.contents))
            if record.id in seen:
                raise InvalidInput(f"content id {record.id} appears twice in {folder}")
            seen.add(record.id)
            result.contents.append(record)
    ids = {c.id for c in result.contents}
    for record in result.contents:
        if record.parent_id not in ids:
            record.parent_id = None  # an ancestor outside the folder: hang the page at the root
    if result.contents:
        roots = [c for c in result.contents if c.parent_id is None and c.type == "page"]
        space.homepage_id = (roots or result.contents)[0].id
    return result


def _record(
    raw: dict[str, Any], space_key: str, users: dict[str, User], index: int
) -> ContentRecord:
    if "id" not in raw or "title" not in raw:
        raise InvalidInput(f"a page file entry lacks id or title: {str(raw)[:120]}")
    version = raw.get("version") or {}
    history = raw.get("history") or {}
    created = _when(history.get("createdDate") or version.get("when"))
    updated = _when(version.get("when") or history.get("createdDate"))
    creator = _user(history.get("createdBy") or version.get("by"), users)
    editor = _user(version.get("by") or history.get("createdBy"), users)
    ancestors = raw.get("ancestors") or []
    labels = ((raw.get("metadata") or {}).get("labels") or {}).get("results") or []
    body = ((raw.get("body") or {}).get("storage") or {}).get("value") or ""
    ctype = raw.get("type", "page")
    if ctype not in ("page", "blogpost"):
        raise InvalidInput(f"content {raw['id']} has unsupported type {ctype!r}")
    status = raw.get("status", "current")
    if status not in ("current", "trashed", "archived", "draft"):
        raise InvalidInput(f"content {raw['id']} has unsupported status {status!r}")
    return ContentRecord(
        id=str(raw["id"]),
        type=ctype,
        status=status,
        title=str(raw["title"]),
        space_key=space_key,
        body=str(body),
        created_at=created,
        created_by=creator,
        updated_at=max(updated, created),
        updated_by=editor,
        version=int(version.get("number") or 1),
        minor_edit=bool(version.get("minorEdit", False)),
        parent_id=str(ancestors[-1]["id"]) if ancestors and ctype == "page" else None,
        labels=[str(label.get("name")) for label in labels if isinstance(label, dict)],
        position=index,
    )
