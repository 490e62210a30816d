"""Validation of a NewSource: pure rules, no server (the end-to-end add is in test_sources.py)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from confluence_rag.errors import InvalidInput, InvalidSiteURL
from confluence_rag.ingest.sources import (
    NewSource,
    SiteCredentials,
    make_source_id,
    normalise_space_keys,
    validate_new_source,
)
from confluence_rag.settings import Settings

TOKEN = "tok-9f8e7d6c5b4a"


def cloud(**overrides: object) -> NewSource:
    fields: dict[str, object] = {
        "confluence_url": "https://acme.atlassian.net",
        "user_email": "me@acme.com",
        "api_token": TOKEN,
        "space_key": "DEV",
    }
    fields.update(overrides)
    return NewSource(**fields)  # type: ignore[arg-type]


def test_cloud_source_is_normalised(settings: Settings) -> None:
    valid = validate_new_source(cloud(space_keys=["ops", "DEV"]), settings)
    assert valid.flavour == "cloud"
    assert valid.site_url == "https://acme.atlassian.net/wiki"
    assert valid.space_keys == ("DEV", "OPS")
    assert valid.source_id == "acme.atlassian.net:DEV+OPS"
    assert valid.page_types == ("page", "blogpost")
    assert valid.sync_frequency_hours == settings.default_sync_frequency_hours
    assert valid.credentials.auth().flavour == "cloud"


@pytest.mark.parametrize(
    ("url", "expected_id", "expected_site"),
    [
        ("https://acme.atlassian.net/wiki/", "acme.atlassian.net:DEV", None),
        ("https://acme.atlassian.net/wiki/spaces/DEV/overview", "acme.atlassian.net:DEV", None),
        (
            "https://intranet.example.com/confluence/display/DEV/Home",
            "intranet.example.com~confluence:DEV",
            "https://intranet.example.com/confluence",
        ),
        ("http://127.0.0.1:8090", "127.0.0.1:8090:DEV", "http://127.0.0.1:8090"),
    ],
)
def test_site_shapes(
    settings: Settings, url: str, expected_id: str, expected_site: str | None
) -> None:
    valid = validate_new_source(cloud(confluence_url=url), settings)
    assert valid.source_id == expected_id
    if expected_site:
        assert valid.site_url == expected_site
        assert valid.flavour == "datacenter"


def test_same_spaces_in_any_order_are_one_source(settings: Settings) -> None:
    a = validate_new_source(cloud(space_keys=["DEV", "OPS"], space_key=None), settings)
    b = validate_new_source(cloud(space_keys="ops, dev", space_key=None), settings)
    assert a.source_id == b.source_id


def test_datacenter_uses_a_bearer_token_without_email(settings: Settings) -> None:
    valid = validate_new_source(
        NewSource(confluence_url="https://wiki.corp", api_token=TOKEN, space_key="ENG"), settings
    )
    assert valid.flavour == "datacenter"
    assert valid.credentials.auth().header() == f"Bearer {TOKEN}"


def test_explicit_flavour_wins(settings: Settings) -> None:
    valid = validate_new_source(
        cloud(confluence_url="http://127.0.0.1:9", flavour="cloud"), settings
    )
    assert valid.flavour == "cloud"
    assert valid.site_url == "http://127.0.0.1:9/wiki"
    assert valid.source_id == "127.0.0.1:9:DEV"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "ftp://acme.atlassian.net",
        "acme",
        "https://",
        "https://me:pw@acme.atlassian.net",
        "http://host:99999",
    ],
)
def test_malformed_urls_are_refused(settings: Settings, url: str) -> None:
    with pytest.raises(InvalidSiteURL):
        validate_new_source(cloud(confluence_url=url), settings)


def test_allowed_sites(isolated_env: object) -> None:
    settings = Settings(allowed_sites=["*.atlassian.net"])
    validate_new_source(cloud(), settings)
    with pytest.raises(InvalidSiteURL, match="ALLOWED_SITES"):
        validate_new_source(cloud(confluence_url="https://evil.example.com"), settings)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"space_key": None}, "space_keys"),
        ({"space_key": "DE V!"}, "space_keys"),
        ({"space_key": "DEV;DROP"}, "space_keys"),
        ({"page_types": ["page", "comment"]}, "page_types"),
        ({"page_types": []}, "page_types"),
        ({"max_pages": 0}, "max_pages"),
        ({"sync_frequency_hours": -1}, "sync_frequency_hours"),
        ({"api_token": "  "}, "api_token"),
        ({"user_email": None}, "user_email"),
        ({"flavour": "server"}, "flavour"),
        ({"min_page_chars": -5}, "min_page_chars"),
        ({"tags": ["ok", "<script>"]}, "tags"),
    ],
)
def test_bad_fields_name_the_field(
    settings: Settings, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_new_source(cloud(**overrides), settings)
    assert info.value.details.get("field") == field
    assert TOKEN not in info.value.message


def test_personal_space_keys_keep_their_case() -> None:
    assert normalise_space_keys("~JDoe", ["dev"]) == ("~JDoe", "DEV")
    assert make_source_id("h", ["OPS", "DEV"]) == "h:DEV+OPS"


def test_secrets_stay_out_of_reprs(settings: Settings) -> None:
    new = cloud(api_token=SecretStr(TOKEN))
    assert new.token() == TOKEN
    valid = validate_new_source(new, settings)
    for text in (repr(new), str(new), repr(valid), repr(valid.credentials), repr(settings)):
        assert TOKEN not in text
    plain = cloud()
    assert TOKEN not in repr(plain)


def test_credentials_round_trip() -> None:
    creds = SiteCredentials(flavour="cloud", api_token=TOKEN, user_email="me@acme.com")
    assert SiteCredentials.from_bytes(creds.to_bytes()) == creds
    assert TOKEN not in repr(creds)
