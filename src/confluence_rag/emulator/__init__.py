"""A faithful local Confluence (Cloud and Data Center) for tests, benchmarks and the demo.

::

    from confluence_rag.emulator import EmulatorConfig, EmulatorServer, FaultRule

    with EmulatorServer(EmulatorConfig(flavour="cloud", pages=300, seed=1)) as server:
        server.site_url   # "http://127.0.0.1:PORT"; Cloud's API is under /wiki (server.api_base)
        server.state      # the live site: add/edit/trash/restore/move pages, faults, clock, log

Modules: `config` (EmulatorConfig, credentials, limit caps), `corpus` + `bodies` (the space
generator), `loader` (pages from JSON files), `cql` + `cql_eval` (CQL parser and evaluator),
`faults` (fault spec and decisions), `gates` (requests a test holds mid-crawl), `state` (the
in-memory site), `shapes` (JSON shapes), `pagination`, `app` + `routes_*` (the ASGI app),
`server` (uvicorn on a real socket).
"""

from confluence_rag.emulator.app import create_emulator_app
from confluence_rag.emulator.config import (
    CLOUD_CAPS,
    DATACENTER_CAPS,
    DEMO_ACCOUNT_ID,
    DEMO_API_TOKEN,
    DEMO_EMAIL,
    DEMO_PAT,
    DEMO_USERNAME,
    RESTRICTED_ACCOUNT_ID,
    RESTRICTED_API_TOKEN,
    RESTRICTED_EMAIL,
    RESTRICTED_PAT,
    RESTRICTED_USERNAME,
    EmulatorConfig,
    LimitCaps,
)
from confluence_rag.emulator.corpus import GeneratedSpace, generate_space
from confluence_rag.emulator.faults import FaultRule, parse_fault_spec
from confluence_rag.emulator.gates import Gate
from confluence_rag.emulator.records import AttachmentRecord, ContentRecord, SpaceRecord, User
from confluence_rag.emulator.server import EmulatorServer, auth_headers
from confluence_rag.emulator.state import EmulatorState, RequestRecord

__all__ = [
    "CLOUD_CAPS",
    "DATACENTER_CAPS",
    "DEMO_ACCOUNT_ID",
    "DEMO_API_TOKEN",
    "DEMO_EMAIL",
    "DEMO_PAT",
    "DEMO_USERNAME",
    "RESTRICTED_ACCOUNT_ID",
    "RESTRICTED_API_TOKEN",
    "RESTRICTED_EMAIL",
    "RESTRICTED_PAT",
    "RESTRICTED_USERNAME",
    "AttachmentRecord",
    "ContentRecord",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "FaultRule",
    "Gate",
    "GeneratedSpace",
    "LimitCaps",
    "RequestRecord",
    "SpaceRecord",
    "User",
    "auth_headers",
    "create_emulator_app",
    "generate_space",
    "parse_fault_spec",
]
