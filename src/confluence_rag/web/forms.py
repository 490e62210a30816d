"""The "add a Confluence space" form: parse what the browser posted, and place errors by field.

Pure (no I/O), so the mapping from each failure to the field a person must fix is tested
without a server. The token is never kept in ``AddSourceForm.values()``: a form re-rendered
after an error comes back with every field but the secret.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from confluence_rag.errors import (
    AuthenticationFailed,
    Conflict,
    ConfluenceRagError,
    ConfluenceUnreachable,
    InvalidInput,
    InvalidSiteURL,
    SpaceAccessDenied,
    SpaceNotFound,
)
from confluence_rag.ingest.sources import PAGE_TYPES, NewSource

Flavour = Literal["cloud", "datacenter"]

# Choices of the sync-frequency select, in hours (0 = only when asked).
SYNC_CHOICES: tuple[tuple[str, str], ...] = (
    ("1", "Every hour"),
    ("6", "Every 6 hours"),
    ("24", "Every day"),
    ("168", "Every week"),
    ("0", "Manual only"),
)
MAX_FIELD_CHARS = 4096
GENERAL = "general"


@dataclass
class AddSourceForm:
    """What the form holds; ``errors`` maps a field name (or ``general``) to a message."""

    confluence_url: str = ""
    flavour: Flavour = "cloud"
    user_email: str = ""
    api_token: str = field(default="", repr=False)
    pat: str = field(default="", repr=False)
    space_keys: str = ""
    page_types: tuple[str, ...] = PAGE_TYPES
    sync_frequency_hours: str = "24"
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def token_field(self) -> str:
        """The token input that applies to the chosen flavour."""
        return "api_token" if self.flavour == "cloud" else "pat"

    def values(self) -> dict[str, object]:
        """Everything to show again in the form: never the tokens."""
        return {
            "confluence_url": self.confluence_url,
            "flavour": self.flavour,
            "user_email": self.user_email,
            "space_keys": self.space_keys,
            "page_types": self.page_types,
            "sync_frequency_hours": self.sync_frequency_hours,
        }


def parse_form(data: Mapping[str, object], page_types: list[str]) -> AddSourceForm:
    """Read the posted fields; obvious problems become field errors at once."""

    def text(name: str) -> str:
        value = data.get(name)
        return value.strip()[:MAX_FIELD_CHARS] if isinstance(value, str) else ""

    flavour_raw = text("flavour")
    form = AddSourceForm(
        confluence_url=text("confluence_url"),
        flavour="datacenter" if flavour_raw == "datacenter" else "cloud",
        user_email=text("user_email"),
        api_token=text("api_token"),
        pat=text("pat"),
        space_keys=text("space_keys"),
        page_types=tuple(t for t in PAGE_TYPES if t in page_types),
        sync_frequency_hours=text("sync_frequency_hours") or "24",
    )
    if flavour_raw not in ("cloud", "datacenter"):
        form.errors["flavour"] = "Choose Confluence Cloud or Data Center."
    if not form.confluence_url:
        form.errors["confluence_url"] = "Enter the address you open Confluence at."
    if form.flavour == "cloud":
        if not form.user_email:
            form.errors["user_email"] = "Confluence Cloud needs your Atlassian account email."
        elif "@" not in form.user_email:
            form.errors["user_email"] = "This does not look like an email address."
        if not form.api_token:
            form.errors["api_token"] = "Paste an API token created for that account."
    elif not form.pat:
        form.errors["pat"] = "Paste a personal access token (Profile > Personal Access Tokens)."
    if not form.space_keys:
        form.errors["space_keys"] = "Enter at least one space key, e.g. DEV."
    if not form.page_types:
        form.errors["page_types"] = "Choose pages, blog posts or both."
    if sync_hours(form.sync_frequency_hours) is None:
        form.errors["sync_frequency_hours"] = "Choose how often to sync."
    return form


def sync_hours(value: str) -> float | None:
    try:
        hours = float(value)
    except ValueError:
        return None
    return hours if math.isfinite(hours) and 0 <= hours <= 24 * 365 else None


def to_new_source(form: AddSourceForm) -> NewSource:
    """The service request for a form that passed ``parse_form`` without errors."""
    return NewSource(
        confluence_url=form.confluence_url,
        api_token=form.api_token if form.flavour == "cloud" else form.pat,
        space_keys=(form.space_keys,),
        user_email=form.user_email or None if form.flavour == "cloud" else None,
        flavour=form.flavour,
        page_types=form.page_types,
        sync_frequency_hours=sync_hours(form.sync_frequency_hours),
    )


# InvalidInput's details["field"] uses the service's (API's) field names.
_SERVICE_FIELDS = {
    "confluence_url": "confluence_url",
    "user_email": "user_email",
    "space_keys": "space_keys",
    "space_key": "space_keys",
    "page_types": "page_types",
    "flavour": "flavour",
    "sync_frequency_hours": "sync_frequency_hours",
}


def place_error(form: AddSourceForm, error: ConfluenceRagError) -> tuple[str, str]:
    """The field to show ``error`` next to, and the words to show there."""
    if isinstance(error, AuthenticationFailed):
        if form.flavour == "cloud":
            hint = "Check the email and API token (they belong to the same Atlassian account)."
        else:
            hint = "Check the personal access token: it may be mistyped, expired or revoked."
        return form.token_field, f"Confluence rejected these credentials. {hint}"
    if isinstance(error, SpaceAccessDenied):
        return "space_keys", f"This account may not read the space. {error.message}"
    if isinstance(error, SpaceNotFound):
        return "space_keys", f"No such space. {error.message}"
    if isinstance(error, (ConfluenceUnreachable, InvalidSiteURL)):
        return "confluence_url", error.message
    if isinstance(error, InvalidInput):
        name = str(error.details.get("field", ""))
        if name == "api_token":
            return form.token_field, error.message
        return _SERVICE_FIELDS.get(name, GENERAL), error.message
    if isinstance(error, Conflict):
        return GENERAL, f"{error.message}: find it on the knowledge base page."
    return GENERAL, error.message
