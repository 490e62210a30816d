"""Authentication and permissions: 401 for missing or wrong credentials (or the other flavour's
scheme), 403 on a space the user may not read, 404 for what does not exist."""

from __future__ import annotations

import base64

import httpx
import pytest

from confluence_rag.emulator import (
    DEMO_API_TOKEN,
    DEMO_EMAIL,
    DEMO_PAT,
    RESTRICTED_EMAIL,
    EmulatorServer,
)
from tests.emulator.helpers import client
from tests.plugins.emulator import EmulatorFactory


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


@pytest.mark.parametrize(
    ("flavour", "headers"),
    [
        ("cloud", {}),
        ("cloud", basic(DEMO_EMAIL, "wrong-token")),
        ("cloud", basic("nobody@example.com", DEMO_API_TOKEN)),
        ("cloud", {"Authorization": f"Bearer {DEMO_PAT}"}),  # Data Center's scheme on Cloud
        ("cloud", {"Authorization": "Basic !!!not-base64"}),
        ("datacenter", {}),
        ("datacenter", {"Authorization": "Bearer wrong-pat"}),
        ("datacenter", basic(DEMO_EMAIL, DEMO_API_TOKEN)),  # Cloud's scheme on Data Center
    ],
)
def test_bad_credentials_are_401(
    emulator_factory: EmulatorFactory, flavour: str, headers: dict[str, str]
) -> None:
    server = emulator_factory(flavour, pages=1)
    response = httpx.get(server.api_base + "/rest/api/space/DEMO", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    assert response.json()["statusCode"] == 401
    assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_restricted_user_gets_403_on_the_main_space(
    emulator_factory: EmulatorFactory, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=5)
    page_id = sorted(server.state.current_ids("DEMO"))[0]
    with client(server, restricted=True) as http:
        denied = http.get("/rest/api/space/DEMO")
        assert denied.status_code == 403
        assert denied.json()["statusCode"] == 403
        assert http.get("/rest/api/space/OPS").status_code == 200
        assert http.get("/rest/api/space/NOPE").status_code == 404
        # search filters by permission; content by id hides existence, as Confluence does
        search = http.get("/rest/api/content/search", params={"cql": "space = DEMO"}).json()
        assert search["results"] == []
        assert http.get(f"/rest/api/content/{page_id}").status_code == 404
        listed = http.get("/rest/api/space").json()
        assert [space["key"] for space in listed["results"]] == ["OPS"]
        assert http.get("/rest/api/user/current").json()["displayName"] == "Restricted User"

    server.state.set_space_permission("DEMO", RESTRICTED_EMAIL, True)
    with client(server, restricted=True) as http:
        assert http.get("/rest/api/space/DEMO").status_code == 200
        assert http.get(f"/rest/api/content/{page_id}").status_code == 200
    server.state.set_space_permission("DEMO", DEMO_EMAIL, False)
    with client(server) as http:
        assert http.get("/rest/api/space/DEMO").status_code == 403


def test_unknown_things_are_404_in_confluence_shape(cloud_emulator: EmulatorServer) -> None:
    with client(cloud_emulator) as http:
        space = http.get("/rest/api/space/NOPE")
        content = http.get("/rest/api/content/999999999")
        route = http.get("/rest/api/nothing-here")
    for response in (space, content, route):
        assert response.status_code == 404
        body = response.json()
        assert body["statusCode"] == 404 and body["message"] and body["reason"] == "Not Found"
    assert space.json()["message"] == "No space with key : NOPE"


def test_cloud_lives_under_wiki_and_datacenter_at_root(
    cloud_emulator: EmulatorServer, dc_emulator: EmulatorServer
) -> None:
    assert cloud_emulator.api_base == cloud_emulator.site_url + "/wiki"
    assert dc_emulator.api_base == dc_emulator.site_url
    cloud_root = httpx.get(cloud_emulator.site_url + "/rest/api/space",
                           headers=cloud_emulator.auth_headers())  # fmt: skip
    assert cloud_root.status_code == 404
    dc_v2 = httpx.get(dc_emulator.site_url + "/api/v2/spaces", headers=dc_emulator.auth_headers())
    assert dc_v2.status_code == 404
