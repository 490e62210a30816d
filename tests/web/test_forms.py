"""The add-space form: parsing, and each failure placed at the field a person must fix."""

from __future__ import annotations

import pytest

from confluence_rag.errors import (
    AuthenticationFailed,
    Conflict,
    ConfluenceRagError,
    ConfluenceUnreachable,
    InvalidInput,
    InvalidSiteURL,
    SpaceAccessDenied,
    SpaceNotFound,
    StoreError,
)
from confluence_rag.web.forms import parse_form, place_error, to_new_source

CLOUD = {
    "confluence_url": "https://acme.atlassian.net",
    "flavour": "cloud",
    "user_email": "me@acme.com",
    "api_token": "tok",
    "space_keys": "DEV, OPS",
    "sync_frequency_hours": "6",
}


def test_a_complete_cloud_form_becomes_a_request_without_echoing_the_token() -> None:
    form = parse_form(CLOUD, ["page", "blogpost"])
    assert form.errors == {}
    new = to_new_source(form)
    assert new.flavour == "cloud" and new.user_email == "me@acme.com"
    assert new.token() == "tok" and new.space_keys == ("DEV, OPS",)
    assert new.sync_frequency_hours == 6.0 and tuple(new.page_types) == ("page", "blogpost")
    assert "tok" not in repr(form) and "tok" not in str(form.values())


def test_data_center_uses_the_pat_and_no_email() -> None:
    form = parse_form({**CLOUD, "flavour": "datacenter", "pat": "pat-1"}, ["page"])
    assert form.errors == {}
    new = to_new_source(form)
    assert new.token() == "pat-1" and new.user_email is None and new.flavour == "datacenter"


@pytest.mark.parametrize(
    ("changes", "page_types", "field"),
    [
        ({"confluence_url": ""}, ["page"], "confluence_url"),
        ({"user_email": ""}, ["page"], "user_email"),
        ({"user_email": "not-an-email"}, ["page"], "user_email"),
        ({"api_token": ""}, ["page"], "api_token"),
        ({"flavour": "datacenter"}, ["page"], "pat"),
        ({"flavour": "other"}, ["page"], "flavour"),
        ({"space_keys": " "}, ["page"], "space_keys"),
        ({}, [], "page_types"),
        ({"sync_frequency_hours": "often"}, ["page"], "sync_frequency_hours"),
        ({"sync_frequency_hours": "-1"}, ["page"], "sync_frequency_hours"),
        ({"sync_frequency_hours": "nan"}, ["page"], "sync_frequency_hours"),
    ],
)
def test_missing_or_wrong_fields_are_reported_at_the_field(
    changes: dict[str, str], page_types: list[str], field: str
) -> None:
    form = parse_form({**CLOUD, **changes}, page_types)
    assert field in form.errors, form.errors


@pytest.mark.parametrize(
    ("flavour", "error", "field"),
    [
        ("cloud", AuthenticationFailed("401"), "api_token"),
        ("datacenter", AuthenticationFailed("401"), "pat"),
        ("cloud", SpaceAccessDenied("403"), "space_keys"),
        ("cloud", SpaceNotFound("404"), "space_keys"),
        ("cloud", ConfluenceUnreachable("down"), "confluence_url"),
        ("cloud", InvalidSiteURL("bad"), "confluence_url"),
        ("cloud", InvalidInput("bad key", details={"field": "space_keys"}), "space_keys"),
        ("datacenter", InvalidInput("no token", details={"field": "api_token"}), "pat"),
        ("cloud", InvalidInput("odd", details={"field": "knowledge_type"}), "general"),
        ("cloud", Conflict("source x exists"), "general"),
        ("cloud", StoreError("disk"), "general"),
    ],
)
def test_service_errors_land_next_to_the_right_field(
    flavour: str, error: ConfluenceRagError, field: str
) -> None:
    form = parse_form({**CLOUD, "flavour": flavour, "pat": "p"}, ["page"])
    name, message = place_error(form, error)
    assert name == field
    assert message
