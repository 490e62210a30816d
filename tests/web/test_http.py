"""The UI over plain HTTP: security headers, CSRF refusals, the add form's errors by field,
escaping of hostile page content, and the API-token login cookie."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, EmulatorServer
from confluence_rag.settings import Settings
from confluence_rag.web.security import CSP
from tests.plugins.emulator import EmulatorFactory
from tests.web.conftest import WebClientFactory, csrf_of

HOSTILE_BODY = (
    "<p>Hostile page about zebrafish onboarding.</p>"
    "<p>&lt;script&gt;window.__pwned = 1&lt;/script&gt; and "
    "&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;</p>"
    '<p><a href="javascript:window.__pwned=3">click me</a></p>'
    "<script>window.__pwned = 4</script>"
)


def form_fields(server: EmulatorServer, **overrides: str) -> dict[str, str]:
    fields = {
        "confluence_url": server.site_url,
        "flavour": server.config.flavour,
        "user_email": DEMO_EMAIL,
        "api_token": DEMO_API_TOKEN,
        "space_keys": server.config.space_key,
        "page_types": "page",
        "sync_frequency_hours": "24",
    }
    fields.update(overrides)
    return fields


def add_space(client: httpx.Client, fields: dict[str, str]) -> httpx.Response:
    token = csrf_of(client.get("/sources/new").text)
    return client.post("/sources/new", data={**fields, "csrf_token": token})


def error_of(html: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    assert found, f"no error shown at {field}"
    return found.group(1)


def wait_idle(client: httpx.Client, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/api/progress").json()["count"]:
        assert time.monotonic() < deadline, "jobs still running"
        time.sleep(0.1)


def test_pages_carry_the_csp_and_security_headers(web_client: WebClientFactory) -> None:
    client = web_client()
    for path in ("/", "/sources/new", "/search", "/search?q=anything"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-security-policy"] == CSP
        assert "script-src 'self';" in CSP and "frame-ancestors 'none'" in CSP
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in response.text  # only <script src="/static/app.js">
    cookie = client.cookies.get("crag_csrf")
    assert cookie and len(cookie) >= 20
    # Static files are served from the package (no CDN).
    assert client.get("/static/app.css").status_code == 200
    assert "EventSource" in client.get("/static/app.js").text


def test_the_empty_knowledge_base_says_what_to_do(web_client: WebClientFactory) -> None:
    html = web_client().get("/").text
    assert "No spaces yet" in html and 'href="/sources/new"' in html
    search = web_client().get("/search?q=deploy").text
    assert "Nothing to search yet" in search


def test_posts_without_a_valid_csrf_token_are_refused_and_change_nothing(
    web_client: WebClientFactory, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=3)
    client = web_client()
    token = csrf_of(client.get("/sources/new").text)
    fields = form_fields(server)

    no_token = client.post("/sources/new", data=fields)
    assert no_token.status_code == 403
    assert "security token is missing" in no_token.text
    wrong = client.post("/sources/new", data={**fields, "csrf_token": "x" * 43})
    assert wrong.status_code == 403 and "does not match" in wrong.text
    cross_site = client.post(
        "/sources/new",
        data={**fields, "csrf_token": token},
        headers={"Origin": "http://evil.example"},
    )
    assert cross_site.status_code == 403 and "another site" in cross_site.text
    fetch_site = client.post(
        "/sources/new",
        data={**fields, "csrf_token": token},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert fetch_site.status_code == 403
    # A token without its cookie (another browser's page) is refused too.
    fresh = httpx.Client(base_url=str(client.base_url))
    try:
        assert fresh.post("/sources/new", data={**fields, "csrf_token": token}).status_code == 403
    finally:
        fresh.close()
    assert client.get("/api/confluence/sources").json()["count"] == 0
    assert server.state.request_count("/rest/api") == 0  # Confluence never contacted

    same_origin = client.post(
        "/sources/new",
        data={**fields, "csrf_token": token},
        headers={"Origin": str(client.base_url).rstrip("/")},
    )
    assert same_origin.status_code == 303, same_origin.text
    assert client.get("/api/confluence/sources").json()["count"] == 1


def test_add_form_shows_each_failure_at_its_field_and_saves_nothing(
    web_client: WebClientFactory, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=3)
    client = web_client()

    wrong_token = add_space(client, form_fields(server, api_token="not-the-token"))
    assert wrong_token.status_code == 401
    assert "Confluence rejected these credentials" in error_of(wrong_token.text, "api_token")
    assert "not-the-token" not in wrong_token.text  # the token is never sent back
    assert re.search(r'id="api_token" name="api_token" type="password"', wrong_token.text)
    assert f'value="{server.site_url}"' in wrong_token.text  # the rest is kept

    missing_space = add_space(client, form_fields(server, space_keys="NOPE"))
    assert missing_space.status_code == 404
    assert "No such space" in error_of(missing_space.text, "space_keys")

    bad_key = add_space(client, form_fields(server, space_keys="D$V"))
    assert bad_key.status_code == 400
    assert "not a valid space key" in error_of(bad_key.text, "space_keys")

    unreachable = add_space(client, form_fields(server, confluence_url="http://127.0.0.1:9"))
    assert unreachable.status_code == 502
    assert "Could not reach Confluence" in error_of(unreachable.text, "confluence_url")

    no_email = add_space(client, form_fields(server, user_email=""))
    assert no_email.status_code == 400
    assert "email" in error_of(no_email.text, "user_email")

    dc_without_pat = add_space(client, form_fields(server, flavour="datacenter"))
    assert dc_without_pat.status_code == 400
    assert "personal access token" in error_of(dc_without_pat.text, "pat")

    assert client.get("/api/confluence/sources").json()["count"] == 0


def test_add_then_sync_pause_resume_cancel_and_delete(
    web_client: WebClientFactory, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=6)
    client = web_client()
    added = add_space(client, form_fields(server))
    assert added.status_code == 303
    assert added.headers["location"].startswith("/?notice=added&source=")
    home = client.get(added.headers["location"]).text
    assert "Its first crawl is running below" in home or "Last crawl" in home
    (source,) = client.get("/api/confluence/sources").json()["sources"]
    source_id = source["source_id"]
    segment = quote(source_id, safe="")
    wait_idle(client)

    home = client.get("/").text
    assert "Last crawl" in home and "completed" in home
    assert re.search(r'<span class="num">\d+</span> added', home)

    token = csrf_of(home)
    synced = client.post(f"/sources/{segment}/sync", data={"csrf_token": token})
    assert synced.status_code == 303 and "notice=sync" in synced.headers["location"]
    wait_idle(client)
    assert "Last sync" in client.get("/").text

    paused = client.post(f"/sources/{segment}/pause", data={"csrf_token": token})
    assert paused.status_code == 303
    home = client.get("/").text
    assert "Resume" in home and "paused" in home
    assert client.get(f"/api/confluence/sources/{segment}").json()["paused"] is True
    client.post(f"/sources/{segment}/resume", data={"csrf_token": token})
    assert client.get(f"/api/confluence/sources/{segment}").json()["paused"] is False

    source = client.get(f"/api/confluence/sources/{segment}").json()
    assert source["total_pages"] > 0
    confirm = client.get(f"/sources/{segment}/delete")
    assert confirm.status_code == 200
    assert f"<strong>{source['total_pages']}</strong> pages" in confirm.text
    assert "stored credentials" in confirm.text
    gone = client.post(f"/sources/{segment}/delete", data={"csrf_token": token})
    assert gone.status_code == 303 and "notice=deleted" in gone.headers["location"]
    assert client.get("/api/confluence/sources").json()["count"] == 0
    assert client.get(f"/sources/{segment}/delete").status_code == 404


def test_hostile_page_content_is_escaped_everywhere(
    web_client: WebClientFactory, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=3)
    hostile = server.state.add_page("Zebrafish <script>window.__pwned=5</script>", HOSTILE_BODY)
    client = web_client()
    assert add_space(client, form_fields(server)).status_code == 303
    wait_idle(client)
    (source,) = client.get("/api/confluence/sources").json()["sources"]
    page_id = f"{source['source_id']}:{hostile.id}"

    results = client.get("/search", params={"q": "zebrafish onboarding"})
    assert results.status_code == 200
    assert "Zebrafish &lt;script&gt;" in results.text
    assert "<script>window" not in results.text and "<img" not in results.text

    view = client.get(f"/pages/{quote(page_id, safe='')}")
    assert view.status_code == 200, view.text
    html = view.text
    assert "<script>window" not in html
    assert "<img" not in html
    assert "&lt;script&gt;window.__pwned = 1" in html  # shown as text, not run
    assert "javascript:" not in html.lower()
    assert view.headers["content-security-policy"] == CSP
    assert "?chunks=1#chunks" in html and 'id="chunks"' not in html

    with_chunks = client.get(f"/pages/{quote(page_id, safe='')}", params={"chunks": "1"})
    assert with_chunks.status_code == 200
    listed = client.get(f"/api/pages/{page_id}").json()
    assert f"{listed['chunk_count']} chunks as indexed" in with_chunks.text
    assert with_chunks.text.count('<li class="chunk">') == listed["chunk_count"] > 0
    assert "<script>window" not in with_chunks.text


def test_unknown_page_is_a_404_page(web_client: WebClientFactory) -> None:
    response = web_client().get("/pages/nowhere:1")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "Not found" in response.text


def test_search_states_say_what_to_do(
    web_client: WebClientFactory, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=4)
    client = web_client()
    assert add_space(client, form_fields(server)).status_code == 303
    wait_idle(client)
    assert "Type a question or a few words" in client.get("/search").text
    markers = server.state.markers(server.config.space_key)
    page_id, phrase = next(
        (cid, text) for cid, text in markers.items() if server.state.content(cid).type == "page"
    )

    bad_date = client.get("/search", params={"q": "deploy", "updated_after": "yesterday"})
    assert bad_date.status_code == 400
    assert "must be a date like 2024-01-31" in bad_date.text
    assert "Change the query or the filters" in bad_date.text

    unknown = client.get("/search", params={"q": "deploy", "space": "NOSUCHSPACE"})
    assert unknown.status_code == 400
    assert "&#39;NOSUCHSPACE&#39; is not in any indexed source" in unknown.text
    assert "Change the query or the filters" in unknown.text

    nothing = client.get("/search", params={"q": "deploy", "label": "no-such-label"})
    assert nothing.status_code == 200
    assert "No results for" in nothing.text and "remove filters" in nothing.text

    # Nonsense finds only the nearest vectors (the test embeddings are hashes: never close):
    # each hit is marked weak, and the page says nothing matches closely.
    nonsense = client.get("/search", params={"q": "zzqxv plorkified"})
    assert nonsense.status_code == 200 and 'class="result"' in nonsense.text
    assert "Nothing matches" in nonsense.text and "closely" in nonsense.text
    assert nonsense.text.count('class="badge weak"') == nonsense.text.count('class="result"')
    real = client.get("/search", params={"q": server.state.content(page_id).title})
    assert "Nothing matches" not in real.text and "(one per page)" in real.text

    code = client.get("/search", params={"q": phrase, "tab": "code"})
    assert code.status_code == 200
    first = code.text.split('<li class="result code-result">')[1]
    assert 'class="badge lang"' in first and "data-copy-target=" in first
    assert phrase in first.split("<pre>")[1]
    assert f'href="{server.site_url}/wiki/spaces/' in first and f"/pages/{page_id}" in first


@pytest.fixture
def token_settings(web_settings: Settings) -> Settings:
    return web_settings.model_copy(update={"api_token": SecretStr("s3cret-token-value")})


def test_with_an_api_token_the_ui_asks_for_it_once(
    web_client: WebClientFactory, token_settings: Settings
) -> None:
    client = web_client(token_settings)
    home = client.get("/search?q=x")
    assert home.status_code == 303
    assert home.headers["location"] == "/login?next=%2Fsearch%3Fq%3Dx"
    login = client.get(home.headers["location"])
    assert login.status_code == 200 and 'type="password"' in login.text
    token = csrf_of(login.text)

    wrong = client.post("/login", data={"token": "nope", "next": "/", "csrf_token": token})
    assert wrong.status_code == 401 and "crag_token" not in client.cookies
    no_csrf = client.post("/login", data={"token": "s3cret-token-value", "next": "/"})
    assert no_csrf.status_code == 403

    right = client.post(
        "/login",
        data={"token": "s3cret-token-value", "next": "//evil.example/", "csrf_token": token},
    )
    assert right.status_code == 303 and right.headers["location"] == "/"
    set_cookie = right.headers["set-cookie"].lower()
    assert "crag_token=" in set_cookie and "httponly" in set_cookie
    assert "samesite=strict" in set_cookie
    assert client.get("/").status_code == 200
    # The cookie reads the API (the progress stream needs it) but never changes anything.
    assert client.get("/api/progress").status_code == 200
    assert client.post("/api/search", json={"query": "x"}).status_code == 401
    bearer = {"Authorization": "Bearer s3cret-token-value"}
    assert client.get("/api/progress", headers=bearer).status_code == 200
