"""The user API: Cloud by account id (one, or many in bulk), Data Center by key or username;
unknown users are 404 (left out of a bulk answer), a site that hides its people answers 403, and
every call needs credentials like any other."""

from __future__ import annotations

import httpx
import pytest

from confluence_rag.emulator import DEMO_ACCOUNT_ID, EmulatorServer
from confluence_rag.emulator.records import User
from confluence_rag.emulator.routes_read import BULK_USERS_MAX
from tests.emulator.helpers import client
from tests.plugins.emulator import EmulatorFactory


def authors(server: EmulatorServer) -> list[User]:
    return [u for u in server.state.users.values() if u.account_id != DEMO_ACCOUNT_ID]


def test_cloud_user_by_account_id(cloud_emulator: EmulatorServer) -> None:
    someone = authors(cloud_emulator)[3]
    with client(cloud_emulator) as http:
        response = http.get("/rest/api/user", params={"accountId": someone.account_id})
    assert response.status_code == 200
    body = response.json()
    assert body["accountId"] == someone.account_id
    assert body["displayName"] == someone.display_name
    assert body["publicName"] == someone.display_name
    assert body["accountType"] == "atlassian" and body["type"] == "known"
    assert "username" not in body and "userKey" not in body  # gone on Cloud (privacy)
    assert body["_links"]["self"].endswith(f"/wiki/rest/api/user?accountId={someone.account_id}")


def test_cloud_unknown_user_is_404_and_no_id_is_400(cloud_emulator: EmulatorServer) -> None:
    with client(cloud_emulator) as http:
        missing = http.get("/rest/api/user", params={"accountId": "5" + "0" * 23})
        assert missing.status_code == 404
        assert missing.json()["statusCode"] == 404
        assert "0" * 23 in missing.json()["message"]
        # Cloud no longer looks users up by username or key
        someone = authors(cloud_emulator)[0]
        assert http.get("/rest/api/user", params={"username": someone.username}).status_code == 400


def test_cloud_bulk_returns_known_users_in_order_and_omits_unknown(
    cloud_emulator: EmulatorServer,
) -> None:
    people = authors(cloud_emulator)[:4]
    ids = [people[2].account_id, "5nobody", people[0].account_id, people[3].account_id]
    with client(cloud_emulator) as http:
        response = http.get("/rest/api/user/bulk", params=[("accountId", i) for i in ids])
        assert response.status_code == 200
        body = response.json()
        assert [u["accountId"] for u in body["results"]] == [
            people[2].account_id,
            people[0].account_id,
            people[3].account_id,
        ]
        assert [u["displayName"] for u in body["results"]] == [
            people[2].display_name,
            people[0].display_name,
            people[3].display_name,
        ]
        assert body["size"] == 3 and body["start"] == 0 and body["limit"] == BULK_USERS_MAX
        assert body["_links"]["base"].endswith("/wiki") and body["_links"]["context"] == "/wiki"
        # comma-separated ids are read too; nothing known is an empty list, not an error
        joined = http.get("/rest/api/user/bulk", params={"accountId": ",".join(ids[:2])})
        assert [u["accountId"] for u in joined.json()["results"]] == [people[2].account_id]
        empty = http.get("/rest/api/user/bulk", params={"accountId": "5nobody"})
        assert empty.status_code == 200 and empty.json()["results"] == []
        assert http.get("/rest/api/user/bulk").status_code == 400


def test_cloud_bulk_looks_at_the_first_hundred_ids_only(cloud_emulator: EmulatorServer) -> None:
    someone = authors(cloud_emulator)[0]
    padding = [f"5unknown{n:04d}" for n in range(BULK_USERS_MAX)]
    with client(cloud_emulator) as http:
        late = http.get(
            "/rest/api/user/bulk", params=[("accountId", i) for i in [*padding, someone.account_id]]
        )
        assert late.status_code == 200 and late.json()["results"] == []  # silently dropped
        small = http.get(
            "/rest/api/user/bulk",
            params=[("accountId", padding[0]), ("accountId", someone.account_id), ("limit", 1)],
        )
        assert small.json()["results"] == [] and small.json()["limit"] == 1


def test_datacenter_user_by_key_and_by_username(dc_emulator: EmulatorServer) -> None:
    someone = authors(dc_emulator)[2]
    with client(dc_emulator) as http:
        by_key = http.get("/rest/api/user", params={"key": someone.user_key})
        by_name = http.get("/rest/api/user", params={"username": someone.username})
        for response in (by_key, by_name):
            assert response.status_code == 200
            body = response.json()
            assert body == by_key.json()
            assert body["type"] == "known"
            assert body["userKey"] == someone.user_key and body["username"] == someone.username
            assert body["displayName"] == someone.display_name
            assert "accountId" not in body
        unknown = http.get("/rest/api/user", params={"username": "nobody"})
        assert unknown.status_code == 404 and "nobody" in unknown.json()["message"]
        assert http.get("/rest/api/user", params={"key": "f" * 32}).status_code == 404
        assert http.get("/rest/api/user").status_code == 400
        # Data Center has no bulk lookup
        bulk = http.get("/rest/api/user/bulk", params={"accountId": someone.account_id})
        assert bulk.status_code == 404 and bulk.json()["message"].startswith("null for uri")


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_user_api_needs_credentials_and_can_be_closed(
    emulator_factory: EmulatorFactory, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=1, extra_spaces={}, user_lookup=False)
    someone = authors(server)[0]
    params = {"accountId": someone.account_id} if flavour == "cloud" else {"key": someone.user_key}
    anonymous = httpx.get(server.api_base + "/rest/api/user", params=params)
    assert anonymous.status_code == 401
    with client(server) as http:
        denied = http.get("/rest/api/user", params=params)
        assert denied.status_code == 403 and denied.json()["statusCode"] == 403
        if flavour == "cloud":
            assert http.get("/rest/api/user/bulk", params=params).status_code == 403
        # the caller's own record stays readable
        assert http.get("/rest/api/user/current").status_code == 200
        server.state.config.user_lookup = True  # a live site can open its directory again
        assert http.get("/rest/api/user", params=params).json()["displayName"] == (
            someone.display_name
        )
