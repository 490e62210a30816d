"""JSON shapes of Confluence REST responses, copied from real ones (see
``../shared/data/confluence/api_responses``): content objects with ``_expandable`` for whatever
was not expanded, users, versions, history, spaces, labels, attachments, envelopes, search
results, errors, and the v2 page/space shapes.

Cloud and Data Center differ in small, breaking ways that clients trip on: users (``accountId``
vs ``username``/``userKey``), timestamps (``Z`` vs the server's offset), web UI links
(``/spaces/KEY/pages/ID/Title`` vs ``/display/KEY/Title``). Each renderer takes a ``Render``
context that knows the flavour and the absolute base URL of the request.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from confluence_rag.emulator.records import AttachmentRecord, ContentRecord, SpaceRecord, User

if TYPE_CHECKING:
    from confluence_rag.emulator.state import EmulatorState

JSON = dict[str, Any]

CONTENT_EXPANDABLE = (
    "childTypes", "container", "metadata", "operations", "schedulePublishDate",
    "schedulePublishInfo", "children", "restrictions", "history", "ancestors", "body", "version",
    "descendants", "space",
)  # fmt: skip
BODY_EXPANDABLE = (
    "editor", "atlas_doc_format", "view", "export_view", "styled_view", "dynamic", "storage",
    "editor2", "anonymous_export_view",
)  # fmt: skip


def expand_tree(expand: str | None) -> JSON:
    """``"body.storage,version"`` -> ``{"body": {"storage": {}}, "version": {}}``."""
    tree: JSON = {}
    for item in (expand or "").split(","):
        node = tree
        for part in item.strip().split("."):
            if part:
                node = node.setdefault(part, {})
    return tree


def expand_list(expand: str | None) -> list[str]:
    return [item.strip() for item in (expand or "").split(",") if item.strip()]


@dataclass(frozen=True, slots=True)
class Render:
    """What a renderer needs to know about the request it answers."""

    state: EmulatorState
    flavour: str
    base: str  # absolute, with context path: "http://127.0.0.1:1234/wiki"
    context: str  # "/wiki" or ""
    zone: tzinfo

    @property
    def cloud(self) -> bool:
        return self.flavour == "cloud"

    def when(self, moment: datetime) -> str:
        """Cloud answers in UTC with ``Z``; Data Center in the server's zone with an offset."""
        if self.cloud:
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        local = moment.astimezone(self.zone)
        text = local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
        offset = local.strftime("%z")
        return f"{text}{offset[:3]}:{offset[3:]}"


def friendly(moment: datetime) -> str:
    return moment.strftime("%b %d, %Y")


def tiny_id(content_id: str) -> str:
    """Confluence's tiny link: the id's little-endian bytes, base64url, trailing 'A's trimmed."""
    number = int(content_id) if content_id.isdigit() else zlib.crc32(content_id.encode())
    raw = number.to_bytes(8, "little").rstrip(b"\0") or b"\0"
    return "/x/" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


# ---------------------------------------------------------------- users


def user_json(user: User | None, r: Render) -> JSON:
    if user is None:
        return {"type": "anonymous", "displayName": "Anonymous"}
    if r.cloud:
        return {
            "type": "known",
            "accountId": user.account_id,
            "accountType": "atlassian",
            "email": user.email,
            "publicName": user.display_name,
            "profilePicture": {
                "path": f"{r.context}/aa-avatar/{user.account_id}",
                "width": 48,
                "height": 48,
                "isDefault": False,
            },
            "displayName": user.display_name,
            "isExternalCollaborator": False,
            "_expandable": {"operations": "", "personalSpace": ""},
            "_links": {"self": f"{r.base}/rest/api/user?accountId={user.account_id}"},
        }
    return {
        "type": "known",
        "username": user.username,
        "userKey": user.user_key,
        "profilePicture": {
            "path": f"{r.context}/images/icons/profilepics/default.svg",
            "width": 48,
            "height": 48,
            "isDefault": True,
        },
        "displayName": user.display_name,
        "_expandable": {"status": ""},
        "_links": {"self": f"{r.base}/rest/api/user?key={user.user_key}"},
    }


# ---------------------------------------------------------------- content


def web_ui(record: ContentRecord, r: Render) -> str:
    slug = quote_plus(record.title)
    if record.type == "blogpost":
        day = record.created_at.astimezone(r.zone)
        if r.cloud:
            return f"/spaces/{record.space_key}/blog/{day:%Y/%m/%d}/{record.id}/{slug}"
        return f"/display/{record.space_key}/{day:%Y/%m/%d}/{slug}"
    if r.cloud:
        return f"/spaces/{record.space_key}/pages/{record.id}/{slug}"
    return f"/display/{record.space_key}/{slug}"


def content_links(record: ContentRecord, r: Render) -> JSON:
    if r.cloud:
        editui = f"/pages/resumedraft.action?draftId={record.id}"
    else:
        editui = f"/pages/editpage.action?pageId={record.id}"
    return {
        "webui": web_ui(record, r),
        "editui": editui,
        "tinyui": tiny_id(record.id),
        "self": f"{r.base}/rest/api/content/{record.id}",
    }


def version_json(record: ContentRecord, r: Render) -> JSON:
    out: JSON = {
        "by": user_json(r.state.users.get(record.updated_by), r),
        "when": r.when(record.updated_at),
        "friendlyWhen": friendly(record.updated_at),
        "message": record.version_message,
        "number": record.version,
        "minorEdit": record.minor_edit,
    }
    if r.cloud:
        out["confRev"] = f"confluence$content${record.id}.{record.version}"
        out["contentTypeModified"] = False
    else:
        out["hidden"] = False
    out["_expandable"] = {"collaborators": "", "content": f"/rest/api/content/{record.id}"}
    out["_links"] = {"self": f"{r.base}/rest/api/content/{record.id}/version/{record.version}"}
    return out


def history_json(record: ContentRecord, tree: JSON, r: Render) -> JSON:
    out: JSON = {
        "latest": True,
        "createdBy": user_json(r.state.users.get(record.created_by), r),
        "createdDate": r.when(record.created_at),
    }
    if "lastUpdated" in tree:
        out["lastUpdated"] = version_json(record, r)
    out["contributors"] = {"_expandable": {"publishers": ""}}
    expandable: JSON = {"lastOwnedBy": "", "nextVersion": "", "ownedBy": "", "previousVersion": ""}
    if "lastUpdated" not in tree:
        expandable["lastUpdated"] = ""
    out["_expandable"] = expandable
    out["_links"] = {"self": f"{r.base}/rest/api/content/{record.id}/history"}
    return out


def label_json(name: str) -> JSON:
    return {
        "prefix": "global",
        "name": name,
        "id": str(zlib.crc32(name.encode()) % 10**9),
        "label": name,
    }


def labels_envelope(record: ContentRecord, r: Render, start: int = 0, limit: int = 200) -> JSON:
    names = record.labels[start : start + limit]
    out = envelope(
        [label_json(n) for n in names], start, limit, r, f"/rest/api/content/{record.id}/label"
    )
    return out


def body_json(record: ContentRecord, tree: JSON) -> JSON:
    out: JSON = {}
    for representation in ("storage", "view", "export_view", "styled_view"):
        if representation in tree:
            # view-like representations are the storage text here: enough for clients that
            # only need "some HTML", and honest about what the emulator renders
            out[representation] = {
                "value": record.body,
                "representation": representation,
                "embeddedContent": [],
                "_expandable": {"content": f"/rest/api/content/{record.id}"},
            }
    out["_expandable"] = {k: "" for k in BODY_EXPANDABLE if k not in tree}
    return out


def content_json(record: ContentRecord, tree: JSON, r: Render) -> JSON:
    """A v1 content object with exactly the expansions asked for."""
    out: JSON = {"id": record.id, "type": record.type, "status": record.status}
    out["title"] = record.title
    expandable: JSON = {}
    for key in CONTENT_EXPANDABLE:
        sub = tree.get(key)
        if sub is None:
            expandable[key] = _expandable_link(key, record)
        elif key == "space":
            out["space"] = space_json(r.state.spaces[record.space_key], sub, r)
        elif key == "container":
            out["container"] = space_json(r.state.spaces[record.space_key], {}, r)
        elif key == "history":
            out["history"] = history_json(record, sub, r)
        elif key == "version":
            out["version"] = version_json(record, r)
        elif key == "ancestors":
            out["ancestors"] = [content_json(a, {}, r) for a in r.state.ancestors(record)]
        elif key == "body":
            out["body"] = body_json(record, sub)
        elif key == "metadata":
            metadata: JSON = {}
            if "labels" in sub:
                metadata["labels"] = labels_envelope(record, r)
            metadata["_expandable"] = {
                k: "" for k in ("currentuser", "comments", "simple", "properties", "frontend")
            }
            if "labels" not in sub:
                metadata["_expandable"]["labels"] = ""
            out["metadata"] = metadata
        elif key == "children":
            out["children"] = children_json(record, sub, r)
        else:
            out[key] = {}
    out["macroRenderedOutput"] = {}
    out["extensions"] = {"position": record.position}
    out["_expandable"] = expandable
    out["_links"] = content_links(record, r)
    return out


def _expandable_link(key: str, record: ContentRecord) -> str:
    links = {
        "container": f"/rest/api/space/{record.space_key}",
        "space": f"/rest/api/space/{record.space_key}",
        "children": f"/rest/api/content/{record.id}/child",
        "descendants": f"/rest/api/content/{record.id}/descendant",
        "history": f"/rest/api/content/{record.id}/history",
        "restrictions": f"/rest/api/content/{record.id}/restriction/byOperation",
    }
    return links.get(key, "")


def children_json(record: ContentRecord, tree: JSON, r: Render) -> JSON:
    out: JSON = {}
    base_path = f"/rest/api/content/{record.id}/child"
    for kind in ("page", "attachment", "comment", "blogpost"):
        if kind not in tree:
            continue
        if kind == "attachment":
            items = [attachment_json(a, r) for a in r.state.attachments_of(record.id)]
        elif kind == "page":
            items = [content_json(c, {}, r) for c in r.state.children(record.id)]
        else:
            items = []
        out[kind] = envelope(items[:25], 0, 25, r, f"{base_path}/{kind}")
    out["_expandable"] = {k: f"{base_path}/{k}" for k in ("attachment", "comment", "page")}
    out["_links"] = {"self": f"{r.base}{base_path}"}
    return out


def attachment_json(attachment: AttachmentRecord, r: Render) -> JSON:
    millis = int(attachment.created_at.timestamp() * 1000)
    download = (
        f"/download/attachments/{attachment.container_id}/{quote(attachment.title)}"
        f"?version={attachment.version}&modificationDate={millis}&api=v2"
    )
    author = r.state.users.get(attachment.author_id)
    return {
        "id": attachment.id,
        "type": "attachment",
        "status": attachment.status,
        "title": attachment.title,
        "metadata": {
            "mediaType": attachment.media_type,
            "comment": attachment.comment,
            "_expandable": {"currentuser": "", "properties": "", "frontend": "", "labels": ""},
        },
        "extensions": {
            "mediaType": attachment.media_type,
            "fileSize": len(attachment.data),
            "comment": attachment.comment,
        },
        "version": {
            "by": user_json(author, r),
            "when": r.when(attachment.created_at),
            "friendlyWhen": friendly(attachment.created_at),
            "message": "",
            "number": attachment.version,
            "minorEdit": False,
        },
        "_expandable": {
            k: ""
            for k in ("container", "operations", "children", "restrictions", "history")
            + ("ancestors", "body", "descendants", "space")
        },
        "_links": {
            "webui": f"/pages/viewpageattachments.action?pageId={attachment.container_id}",
            "download": download,
            "self": f"{r.base}/rest/api/content/{attachment.id}",
        },
    }


# ---------------------------------------------------------------- spaces


def space_json(space: SpaceRecord, tree: JSON, r: Render) -> JSON:
    out: JSON = {"id": space.id, "key": space.key}
    if r.cloud:
        out["alias"] = space.key
    out.update({"name": space.name, "type": space.type, "status": space.status})
    expandable: JSON = {
        "settings": f"/rest/api/space/{space.key}/settings",
        "metadata": "",
        "operations": "",
        "lookAndFeel": f"/rest/api/settings/lookandfeel?spaceKey={space.key}",
        "identifiers": "",
        "permissions": "",
        "icon": "",
        "theme": f"/rest/api/space/{space.key}/theme",
        "history": "",
    }
    if "description" in tree:
        out["description"] = {
            "plain": {"value": space.description, "representation": "plain", "embeddedContent": []},
            "_expandable": {"view": ""},
        }
    else:
        expandable["description"] = ""
    home = r.state.contents.get(space.homepage_id or "")
    if "homepage" in tree and home is not None:
        out["homepage"] = content_json(home, {}, r)
    else:
        expandable["homepage"] = f"/rest/api/content/{space.homepage_id}" if home else ""
    out["_expandable"] = expandable
    webui = f"/spaces/{space.key}" if r.cloud else f"/display/{space.key}"
    out["_links"] = {"webui": webui, "self": f"{r.base}/rest/api/space/{space.key}"}
    return out


# ---------------------------------------------------------------- envelopes, search, errors


def envelope(
    results: list[JSON], start: int, limit: int, r: Render, path: str, next_link: str | None = None
) -> JSON:
    links: JSON = {"base": r.base, "context": r.context}
    if next_link is not None:
        links["next"] = next_link
    links["self"] = f"{r.base}{path}"
    return {
        "results": results,
        "start": start,
        "limit": limit,
        "size": len(results),
        "_links": links,
    }


def search_result_json(record: ContentRecord, tree: JSON, r: Render) -> JSON:
    entry = r.state.text_of(record)
    space = r.state.spaces[record.space_key]
    return {
        "content": content_json(record, tree, r),
        "title": record.title,
        "excerpt": entry.text[:200],
        "url": web_ui(record, r),
        "resultGlobalContainer": {
            "title": space.name,
            "displayUrl": f"/spaces/{space.key}" if r.cloud else f"/display/{space.key}",
        },
        "breadcrumbs": [],
        "entityType": "content",
        "iconCssClass": f"aui-icon content-type-{record.type}",
        "lastModified": r.when(record.updated_at),
        "friendlyLastModified": friendly(record.updated_at),
        "score": 0.0,
    }


def error_body(status: int, message: str, reason: str) -> JSON:
    """Confluence's error shape (Cloud adds ``reason``; both carry ``data``)."""
    return {
        "statusCode": status,
        "data": {"authorized": status not in (401, 403), "valid": True, "errors": [],
                 "successful": False},
        "message": message,
        "reason": reason,
    }  # fmt: skip


# ---------------------------------------------------------------- v2 (Cloud)


def page_v2_json(record: ContentRecord, body_format: str | None, r: Render) -> JSON:
    parent = r.state.contents.get(record.parent_id or "")
    space = r.state.spaces[record.space_key]
    out: JSON = {
        "id": record.id,
        "status": record.status,
        "title": record.title,
        "spaceId": str(space.id),
        "parentId": parent.id if parent else None,
        "parentType": parent.type if parent else None,
        "position": record.position,
        "authorId": record.created_by,
        "ownerId": record.created_by,
        "lastOwnerId": None,
        "createdAt": r.when(record.created_at),
        "version": {
            "createdAt": r.when(record.updated_at),
            "message": record.version_message,
            "number": record.version,
            "minorEdit": record.minor_edit,
            "authorId": record.updated_by,
        },
        "body": {},
        "_links": {
            "webui": web_ui(record, r),
            "editui": f"/pages/resumedraft.action?draftId={record.id}",
            "tinyui": tiny_id(record.id),
        },
    }
    if body_format == "storage":
        out["body"] = {"storage": {"representation": "storage", "value": record.body}}
    return out


def space_v2_json(space: SpaceRecord, r: Render) -> JSON:
    return {
        "id": str(space.id),
        "key": space.key,
        "name": space.name,
        "type": space.type,
        "status": space.status,
        "authorId": space.author_id,
        "createdAt": r.when(space.created_at) if space.created_at else None,
        "homepageId": space.homepage_id,
        "description": None,
        "icon": None,
        "_links": {"webui": f"/spaces/{space.key}"},
    }
