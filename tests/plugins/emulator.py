"""Fixtures that run the Confluence emulator over a real socket.

- ``emulator_factory(flavour="cloud", pages=25, **config) -> EmulatorServer``: started now,
  stopped after the test; ``**config`` is any EmulatorConfig field (seed, faults, caps, ...).
- ``cloud_emulator`` / ``dc_emulator``: a started 25-page Cloud / Data Center site.

Each server has ``site_url``, ``api_base``, ``state`` and ``auth_headers()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from confluence_rag.emulator import EmulatorConfig, EmulatorServer

EmulatorFactory = Callable[..., EmulatorServer]


@pytest.fixture
def emulator_factory() -> Iterator[EmulatorFactory]:
    started: list[EmulatorServer] = []

    def factory(flavour: str = "cloud", pages: int = 25, **config: Any) -> EmulatorServer:
        server = EmulatorServer(EmulatorConfig(flavour=flavour, pages=pages, **config))  # type: ignore[arg-type]
        started.append(server.start())
        return server

    yield factory
    for server in reversed(started):
        server.stop()


@pytest.fixture
def cloud_emulator(emulator_factory: EmulatorFactory) -> EmulatorServer:
    return emulator_factory("cloud", pages=25)


@pytest.fixture
def dc_emulator(emulator_factory: EmulatorFactory) -> EmulatorServer:
    return emulator_factory("datacenter", pages=25)
