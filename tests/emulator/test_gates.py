"""Gates hold matching requests over a real socket until the test lets them through: `after`
lets the first ones pass, `release(n)` lets n more, `release()` opens; other requests flow."""

from __future__ import annotations

import threading

import httpx
import pytest

from confluence_rag.emulator import EmulatorServer
from tests.emulator.helpers import client
from tests.plugins.emulator import EmulatorFactory


def _get_in_background(server: EmulatorServer, path: str) -> tuple[threading.Thread, list[int]]:
    statuses: list[int] = []

    def get() -> None:
        with client(server) as http:
            statuses.append(http.get(path).status_code)

    thread = threading.Thread(target=get, daemon=True)
    thread.start()
    return thread, statuses


def test_a_gate_holds_matching_requests_until_released(
    emulator_factory: EmulatorFactory,
) -> None:
    server = emulator_factory("cloud", pages=3)
    gate = server.state.gates.add(path="/rest/api/space/DEMO", after=1)
    with client(server) as http:
        assert http.get("/rest/api/space/DEMO").status_code == 200  # the one `after` lets by

    held, statuses = _get_in_background(server, "/rest/api/space/DEMO")
    gate.wait_held(1)
    assert gate.waiting == 1 and statuses == []
    with client(server) as http:  # the gate holds only what matches
        assert http.get("/rest/api/space/OPS").status_code == 200

    gate.release(1)
    held.join(timeout=30)
    assert statuses == [200]
    assert (gate.passed, gate.held, gate.waiting) == (2, 1, 0)

    second, statuses = _get_in_background(server, "/rest/api/space/DEMO")
    gate.wait_held(2)  # release(1) spent its credit: the next one is held again
    gate.release()
    second.join(timeout=30)
    assert statuses == [200] and gate.is_open
    with client(server) as http:  # open for good
        assert http.get("/rest/api/space/DEMO").status_code == 200


def test_a_gate_matches_the_decoded_query_and_the_method(
    emulator_factory: EmulatorFactory,
) -> None:
    server = emulator_factory("cloud", pages=3)
    gate = server.state.gates.add(method="GET", query="expand=body.storage,version")
    with client(server) as http:
        listing = http.get("/rest/api/content", params={"expand": "version", "limit": 1})
        assert listing.status_code == 200
    held, statuses = _get_in_background(
        server, "/rest/api/content?limit=1&expand=body.storage%2Cversion"
    )
    gate.wait_held(1)
    server.state.gates.remove(gate)
    held.join(timeout=30)
    assert statuses == [200]


def test_waiting_for_a_request_that_never_comes_times_out_with_what_the_gate_saw(
    emulator_factory: EmulatorFactory,
) -> None:
    server = emulator_factory("cloud", pages=1)
    gate = server.state.gates.add(path="/nowhere")
    with pytest.raises(TimeoutError, match="0 request\\(s\\) held, 0 passed"):
        gate.wait_held(1, timeout=0.1)


def test_stopping_the_server_lets_parked_requests_go(emulator_factory: EmulatorFactory) -> None:
    server = emulator_factory("cloud", pages=1)
    gate = server.state.gates.add(path="/rest/api/space")
    held, statuses = _get_in_background(server, "/rest/api/space/DEMO")
    gate.wait_held(1)
    # Without opening the gates, uvicorn would wait out its graceful timeout and then cancel
    # the parked request: the client would get no answer at all.
    server.stop()
    held.join(timeout=30)
    assert statuses == [200]


def test_httpx_sees_a_held_request_as_a_slow_server(emulator_factory: EmulatorFactory) -> None:
    server = emulator_factory("cloud", pages=1)
    gate = server.state.gates.add(path="/rest/api/space")
    with client(server) as http, pytest.raises(httpx.ReadTimeout):
        http.get("/rest/api/space/DEMO", timeout=0.2)
    assert gate.held == 1


def test_times_holds_only_that_many(emulator_factory: EmulatorFactory) -> None:
    server = emulator_factory("cloud", pages=1)
    gate = server.state.gates.add(path="/rest/api/space", times=1)
    held, statuses = _get_in_background(server, "/rest/api/space/DEMO")
    gate.wait_held(1)
    with client(server) as http:  # the one hold is spent: the next request goes through
        assert http.get("/rest/api/space/DEMO").status_code == 200
    assert statuses == [] and gate.waiting == 1
    gate.release()
    held.join(timeout=30)
    assert statuses == [200]
