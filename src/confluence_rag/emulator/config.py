"""How an emulator instance is set up: flavour, size, seed, caps, faults, credentials.

Silent ``limit`` caps (the server answers with fewer results than asked and says nothing):

=========================  ===========================  ===============================
request                    Data Center (documented)     Cloud (our choice, see below)
=========================  ===========================  ===============================
any ``body.*`` expand      50                           25
other expands only         200                          100
no expand                  1000                         250
=========================  ===========================  ===============================

Data Center's figures are Atlassian's knowledge-base article on CQL search. Cloud publishes only
"25 with body.export_view / styled_view"; observed caps vary between ~25 and 250, so the emulator
uses the low end with bodies and the high end without, which is what a client must survive.
Tests force other caps with ``LimitCaps.uniform(n)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from confluence_rag.emulator.faults import FaultRule
from confluence_rag.errors import InvalidInput

Flavour = Literal["cloud", "datacenter"]

# The API user every flavour knows. Cloud: HTTP Basic email:api-token. Data Center: Bearer PAT.
DEMO_EMAIL = "demo@example.com"
DEMO_API_TOKEN = "demo-api-token"
DEMO_PAT = "demo-pat"
DEMO_USERNAME = "demo"
DEMO_ACCOUNT_ID = "5b10ac8d82e05b22cc7d4ef5"

# A second user that may NOT read the main space (403 on it) but may read the extra spaces.
RESTRICTED_EMAIL = "restricted@example.com"
RESTRICTED_API_TOKEN = "restricted-api-token"
RESTRICTED_PAT = "restricted-pat"
RESTRICTED_USERNAME = "restricted"
RESTRICTED_ACCOUNT_ID = "5b10ac8d82e05b22cc7d4ef6"

DEFAULT_LIMIT = 25  # what Confluence uses when the request has no `limit`
CLOUD_MAX_START = 15000  # Cloud answers 400 beyond this offset on /content listings
V2_MAX_LIMIT = 250


@dataclass(frozen=True, slots=True)
class LimitCaps:
    """The largest ``limit`` honoured, by what the request expands."""

    body: int
    expand: int
    bare: int

    @classmethod
    def uniform(cls, cap: int) -> LimitCaps:
        """One cap whatever the expansion: lets a test force page boundaries it wants."""
        return cls(body=cap, expand=cap, bare=cap)

    def cap_for(self, expand: list[str]) -> int:
        if any(item == "body" or item.startswith("body.") for item in expand):
            return self.body
        return self.expand if expand else self.bare


DATACENTER_CAPS = LimitCaps(body=50, expand=200, bare=1000)
CLOUD_CAPS = LimitCaps(body=25, expand=100, bare=250)


@dataclass(slots=True)
class EmulatorConfig:
    """Everything that makes one emulator instance. Same config + seed = same space.

    ``pages`` is the size of the main space ``space_key``; ``extra_spaces`` maps more space keys
    to their sizes (small spaces for multi-space sources and cross-space moves). ``pages_dir``
    replaces the generated main space with the JSON files in that folder (v1 content objects, or
    envelopes with ``results``). ``site_dir`` serves a whole site folder instead (``site.json``
    and a folder per space, see ``loader.load_site``); build such a config with
    ``loader.site_config``, which takes the space keys from the site. ``timeout_budget`` is the
    largest ``limit`` with a body expand that a ``504`` budget fault lets through.
    ``start_time`` fixes the emulator clock at start (the clock only moves when a test moves
    it); None means the real time. ``user_lookup`` False makes the user API (``/rest/api/user``,
    ``/user/bulk``) answer 403, as on sites that keep their people directory from API users.
    """

    flavour: Flavour = "cloud"
    pages: int = 300
    seed: int = 1
    latency_ms: float = 0.0
    faults: list[FaultRule] = field(default_factory=list)
    timezone: str = "UTC"
    space_key: str = "DEMO"
    space_name: str = "Demo Space"
    extra_spaces: dict[str, int] = field(default_factory=lambda: {"OPS": 8})
    caps: LimitCaps | None = None
    timeout_budget: int = 30
    pages_dir: Path | None = None
    site_dir: Path | None = None
    start_time: datetime | None = None
    max_start: int = CLOUD_MAX_START
    user_lookup: bool = True

    def __post_init__(self) -> None:
        if self.flavour not in ("cloud", "datacenter"):
            raise InvalidInput(f"flavour must be 'cloud' or 'datacenter', not {self.flavour!r}")
        if self.pages < 0:
            raise InvalidInput("pages must be 0 or more")
        if self.latency_ms < 0:
            raise InvalidInput("latency_ms must be 0 or more")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise InvalidInput(f"unknown time zone {self.timezone!r}") from error
        keys = [self.space_key, *self.extra_spaces]
        if len(set(keys)) != len(keys):
            raise InvalidInput(f"space keys must be distinct: {keys}")
        for key in keys:
            if not key or not key.replace("~", "").isalnum():
                raise InvalidInput(f"invalid space key {key!r}")
        for name in ("pages_dir", "site_dir"):
            folder = getattr(self, name)
            if folder is not None and not Path(folder).is_dir():
                raise InvalidInput(f"{name} {folder} is not a folder")
        if self.pages_dir is not None and self.site_dir is not None:
            raise InvalidInput("give pages_dir (one space) or site_dir (a site), not both")

    @property
    def limit_caps(self) -> LimitCaps:
        if self.caps is not None:
            return self.caps
        return CLOUD_CAPS if self.flavour == "cloud" else DATACENTER_CAPS

    @property
    def context_path(self) -> str:
        """Cloud serves Confluence under /wiki; Data Center here at the root."""
        return "/wiki" if self.flavour == "cloud" else ""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
