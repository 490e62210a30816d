"""Site URL normalisation: every shape a user pastes maps to the one API base."""

from __future__ import annotations

import pytest

from confluence_rag.confluence.site import looks_like_cloud, normalise_site_url
from confluence_rag.errors import InvalidSiteURL


@pytest.mark.parametrize(
    ("pasted", "flavour", "api_base"),
    [
        ("https://acme.atlassian.net", None, "https://acme.atlassian.net/wiki"),
        ("https://acme.atlassian.net/", None, "https://acme.atlassian.net/wiki"),
        ("https://acme.atlassian.net/wiki", None, "https://acme.atlassian.net/wiki"),
        ("https://acme.atlassian.net/wiki///", None, "https://acme.atlassian.net/wiki"),
        ("  HTTPS://ACME.Atlassian.NET/wiki/  ", None, "https://acme.atlassian.net/wiki"),
        (
            "https://acme.atlassian.net/wiki/spaces/DEV/pages/123/Title?focusedCommentId=9#c",
            None,
            "https://acme.atlassian.net/wiki",
        ),
        ("https://acme.atlassian.net/wiki/rest/api/space", None, "https://acme.atlassian.net/wiki"),
        ("https://acme.atlassian.net:443/wiki", None, "https://acme.atlassian.net/wiki"),
        # Data Center: the context path is whatever precedes the UI part
        ("https://intranet.example.com", None, "https://intranet.example.com"),
        ("https://intranet.example.com/", None, "https://intranet.example.com"),
        (
            "https://intranet.example.com/confluence/",
            None,
            "https://intranet.example.com/confluence",
        ),
        (
            "https://intranet.example.com/confluence/display/DEV/Home",
            None,
            "https://intranet.example.com/confluence",
        ),
        ("https://intranet.example.com/wiki", None, "https://intranet.example.com/wiki"),
        ("http://intranet:8090/", None, "http://intranet:8090"),
        ("http://intranet:80/confluence", None, "http://intranet/confluence"),
        # the credentials decide the flavour: a Cloud emulator on localhost still gets /wiki
        ("http://127.0.0.1:5000", "cloud", "http://127.0.0.1:5000/wiki"),
        ("http://127.0.0.1:5000/wiki/", "cloud", "http://127.0.0.1:5000/wiki"),
        ("http://127.0.0.1:5000/", "datacenter", "http://127.0.0.1:5000"),
        ("http://[::1]:5000/confluence", "datacenter", "http://[::1]:5000/confluence"),
    ],
)
def test_pasted_urls_normalise_to_the_api_base(
    pasted: str, flavour: str | None, api_base: str
) -> None:
    site = normalise_site_url(pasted, flavour)  # type: ignore[arg-type]
    assert site.api_base == api_base
    assert not site.api_base.endswith("/")


@pytest.mark.parametrize(
    ("pasted", "flavour"),
    [
        ("https://acme.atlassian.net", "cloud"),
        ("https://confluence.example.com", "datacenter"),
        ("http://127.0.0.1:8090", "datacenter"),
    ],
)
def test_flavour_is_guessed_from_the_host(pasted: str, flavour: str) -> None:
    assert normalise_site_url(pasted).flavour == flavour
    assert looks_like_cloud(pasted) is (flavour == "cloud")


@pytest.mark.parametrize(
    ("pasted", "message_part"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ftp://acme.atlassian.net", "not an http(s) URL"),
        ("file:///etc/passwd", "not an http(s) URL"),
        ("javascript:alert(1)", "not an http(s) URL"),
        ("acme.atlassian.net", "not an http(s) URL"),
        ("https://", "no host"),
        ("https://host:99999/", "not a valid URL"),
        ("https://host:abc/", "not a valid URL"),
    ],
)
def test_non_http_urls_are_rejected_with_a_clear_message(pasted: str, message_part: str) -> None:
    with pytest.raises(InvalidSiteURL) as caught:
        normalise_site_url(pasted)
    assert message_part in caught.value.message
    assert caught.value.status_code == 400


def test_credentials_in_the_url_are_refused_and_never_echoed() -> None:
    with pytest.raises(InvalidSiteURL) as caught:
        normalise_site_url("https://me%40x.com:s3cret-token@acme.atlassian.net/wiki")
    assert "s3cret-token" not in str(caught.value)
    assert "password" in caught.value.message


def test_origin_and_key() -> None:
    site = normalise_site_url("https://Intranet.Example.com:8443/confluence/")
    assert site.origin == "https://intranet.example.com:8443"
    assert site.key == "https://intranet.example.com:8443/confluence"
    assert str(site) == site.api_base
