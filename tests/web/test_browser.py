"""The web UI in a real browser: Debian's chromium driven by Playwright against a live server.

One server (``create_app`` under uvicorn, the real local MiniLM model, SQLite in tmp) and one
Cloud emulator (the sample site, whose Engineering space is added) serve the whole module; the
tests are one user's session: add a space (wrong token first), watch the crawl reach 100%, search
by a phrase from a code block, change a page in Confluence and Sync now, open a hostile page,
delete the source. They pass in any order:
a test that needs the space crawled calls ``crawled(site)`` (which adds it through the API when
no earlier test did), and the add and delete tests start from the state they need.

Screenshots go to ``$WEB_SCREENSHOTS_DIR`` when set (``make screenshots`` style:
``WEB_SCREENSHOTS_DIR=docs/screenshots pytest tests/web/test_browser.py``), else to tmp.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, Route, expect, sync_playwright

from confluence_rag.api.app import create_app
from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, EmulatorServer
from confluence_rag.emulator.loader import site_config
from confluence_rag.settings import Settings
from tests.api.conftest import ApiServer

# The real MiniLM; a crawl of the sample site's Engineering space can take minutes when both
# cores are busy with other work.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.model,
    pytest.mark.timeout(900),
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CRAWL_TIMEOUT_MS = 600_000
# A name only one sample-site page holds, in a code block (the Feature Flags page), and the
# page the sync test rewrites.
CODE_PHRASE = "kill_carrier_scoring"
CODE_PAGE_ID = "220022"
EDITED_PAGE_ID = "220009"
HOSTILE_TITLE = "Zebrafish <script>alert('title')</script>"
HOSTILE_BODY = (
    "<p>Notes about zebrafish onboarding for the hostile page test.</p>"
    "<p>&lt;script&gt;window.__pwned = 1; alert(1)&lt;/script&gt; and "
    "&lt;img src=x onerror=&quot;window.__pwned=2; alert(2)&quot;&gt;</p>"
    '<p><a href="javascript:window.__pwned=3;alert(3)">click me</a></p>'
    "<script>window.__pwned = 4; alert(4)</script>"
    '<p><img src="x" onerror="window.__pwned=5;alert(5)"/></p>'
)
UPDATE_PHRASE = "ultramarine_heron_update"


@dataclass
class Site:
    """What the tests share: the live app, the emulator, the browser and a screenshot folder."""

    url: str
    emulator: EmulatorServer
    browser: Browser
    shots: Path
    api: httpx.Client
    hostile_id: str = ""
    source_id: str = ""
    dialogs: list[str] = field(default_factory=list)

    def new_page(self, width: int = 1280, height: int = 860) -> Page:
        context = self.browser.new_context(viewport={"width": width, "height": height})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=self.url)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("dialog", self._dialog)
        return page

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def shot(self, page: Page, name: str) -> None:
        page.screenshot(path=str(self.shots / f"{name}.png"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web-browser")
    shots = Path(os.environ.get("WEB_SCREENSHOTS_DIR") or root / "screenshots").resolve()
    shots.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        # The module outlives the per-test isolation: isolate the environment here as well.
        for name in list(os.environ):
            if name.startswith("CONFLUENCE_RAG_"):
                patch.delenv(name)
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.chdir(root)
        settings = Settings(data_dir=root / "data", max_concurrent_jobs=1)
        emulator = EmulatorServer(site_config(flavour="cloud")).start()
        hostile = emulator.state.add_page(HOSTILE_TITLE, HOSTILE_BODY)
        server = ApiServer(create_app(settings)).start()
        api = httpx.Client(base_url=server.url, timeout=30)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                try:
                    yield Site(server.url, emulator, browser, shots, api, hostile_id=hostile.id)
                finally:
                    browser.close()
        finally:
            api.close()
            server.stop()
            emulator.stop()


def crawled(site: Site) -> str:
    """The id of the emulator's space, crawled: added through the API unless a test did."""
    sources = site.api.get("/api/confluence/sources").json()["sources"]
    if sources:
        (source,) = sources
    else:
        body = {
            "confluence_url": site.emulator.site_url,
            "flavour": "cloud",
            "user_email": DEMO_EMAIL,
            "api_token": DEMO_API_TOKEN,
            "space_key": site.emulator.config.space_key,
        }
        created = site.api.post("/api/confluence/sources", json=body)
        assert created.status_code == 201, created.text
        source = created.json()
    site.source_id = source["source_id"]
    wait_for_job_of(site, site.source_id)
    return site.source_id


def wait_for_job_of(site: Site, source_id: str) -> None:
    """Until the source has no active job (its crawl or sync ended)."""
    deadline = time.monotonic() + CRAWL_TIMEOUT_MS / 1000
    while True:
        source = site.api.get(f"/api/confluence/sources/{source_id}").json()
        if source["progress_id"] is None:
            assert source["sync_status"] != "error", source
            return
        assert time.monotonic() < deadline, f"the source's job never ended: {source}"
        time.sleep(0.2)


def fill_cloud_form(page: Page, site: Site, token: str) -> None:
    page.get_by_label("Site URL").fill(site.emulator.site_url)
    page.get_by_label("Confluence Cloud").check()
    page.get_by_label("Atlassian account email").fill(DEMO_EMAIL)
    page.get_by_label("API token").fill(token)
    page.get_by_label("Space keys").fill(site.emulator.config.space_key)
    page.get_by_label("Keep in sync").select_option("24")


def test_add_a_space_wrong_token_then_right_and_watch_it_reach_100(site: Site) -> None:
    for source in site.api.get("/api/confluence/sources").json()["sources"]:
        wait_for_job_of(site, source["source_id"])  # one another test started
        assert site.api.delete(f"/api/confluence/sources/{source['source_id']}").status_code == 200
    page = site.new_page()
    page.goto(site.url + "/")
    expect(page.get_by_role("heading", name="No spaces yet")).to_be_visible()
    page.get_by_role("link", name="Add a Confluence space").click()
    expect(page).to_have_url(site.url + "/sources/new")
    expect(page.get_by_label("API token")).to_have_attribute("type", "password")
    # The Data Center token field is hidden (and not required) while Cloud is chosen.
    expect(page.get_by_label("Personal access token")).to_be_hidden()
    fill_cloud_form(page, site, "wrong-token")
    site.shot(page, "add-space")
    page.get_by_role("button", name="Check and add").click()

    error = page.locator("#api_token-error")
    expect(error).to_contain_text("Confluence rejected these credentials")
    expect(page.get_by_label("API token")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("API token")).to_have_value("")  # never sent back
    expect(page.get_by_label("Site URL")).to_have_value(site.emulator.site_url)
    assert site.api.get("/api/confluence/sources").json()["count"] == 0
    site.shot(page, "add-space-error")

    page.get_by_label("API token").fill(DEMO_API_TOKEN)
    page.get_by_role("button", name="Check and add").click()
    expect(page.get_by_role("status")).to_contain_text("Source added")
    job = page.locator("section.job[data-progress-id]")
    expect(job).to_be_visible()
    expect(job.locator("progress")).to_be_visible()
    # Live updates arrive (SSE): the stage moves on from "queued" while the page stays open.
    expect(job.locator('[data-field="status"]')).to_have_text(
        re.compile("running|completed"), timeout=CRAWL_TIMEOUT_MS
    )
    # Screenshot the bar mid-crawl (or at the end, should the crawl outrun the browser).
    page.wait_for_function(
        "() => { const job = document.querySelector('section.job');"
        " return job && (job.querySelector('progress').value >= 20"
        " || job.dataset.status === 'completed'); }",
        timeout=CRAWL_TIMEOUT_MS,
    )
    site.shot(page, "live-progress")
    expect(job).to_have_attribute("data-status", "completed", timeout=CRAWL_TIMEOUT_MS)
    assert job.locator("progress").evaluate("bar => bar.value") == 100
    expect(job.locator('[data-field="percent"]')).to_have_text("100%")

    # The page reloads by itself and shows the finished crawl's summary.
    summary = page.locator(".summary")
    expect(summary).to_contain_text("Last crawl completed", timeout=15_000)
    expect(page).to_have_url(site.url + "/")  # the one-off notice is gone after the reload
    expect(page.get_by_role("status")).to_have_count(0)
    (source,) = site.api.get("/api/confluence/sources").json()["sources"]
    site.source_id = source["source_id"]
    space_key = site.emulator.config.space_key
    assert source["total_pages"] == len(site.emulator.state.current_ids(space_key))
    expect(page.locator('[data-field="pages"]')).to_have_text(str(source["total_pages"]))
    expect(summary.locator("li", has_text="added").locator(".num")).to_have_text(
        str(source["total_pages"])
    )
    site.shot(page, "knowledge-base")


def test_search_finds_a_page_by_a_phrase_from_its_code_block(site: Site) -> None:
    crawled(site)
    page_id, phrase = CODE_PAGE_ID, CODE_PHRASE
    expected = site.api.get(f"/api/pages/{site.source_id}:{page_id}").json()["url"]
    assert expected.startswith(site.emulator.site_url) and f"/pages/{page_id}/" in expected

    page = site.new_page()
    page.goto(site.url + "/search")
    box = page.get_by_role("searchbox", name="Search the knowledge base")
    expect(box).to_be_focused()
    box.fill(phrase)
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=" + phrase))
    first = page.locator("li.result").first
    title = first.locator("a.result-title")
    expect(title).to_have_attribute("href", expected)
    expect(first.locator(".snippet mark").first).to_be_visible()
    expect(first.locator(".badge")).to_have_text(re.compile("keyword|both|semantic"))
    site.shot(page, "search")

    page.get_by_role("link", name="Code examples").click()
    code = page.locator("li.code-result").first
    expect(code.locator("pre code")).to_contain_text(phrase)
    expect(code.locator(".badge.lang")).not_to_be_empty()
    expect(code.locator("a.result-title")).to_have_attribute("href", expected)
    code.get_by_role("button", name="Copy").click()
    expect(code.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert phrase in copied
    site.shot(page, "search-code")


def test_sync_now_after_a_change_in_confluence_shows_the_update(site: Site) -> None:
    crawled(site)
    page_id = EDITED_PAGE_ID
    record = site.emulator.state.content(page_id)
    site.emulator.state.edit_page(
        page_id, body=f"<p>Rewritten: the {UPDATE_PHRASE} procedure replaces the old one.</p>"
    )
    assert record.version >= 2

    page = site.new_page()
    page.goto(site.url + "/")
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_role("status")).to_contain_text("Sync started")
    expect(page.locator(".summary")).to_contain_text(
        "Last sync completed", timeout=CRAWL_TIMEOUT_MS
    )
    expect(page.locator(".summary li", has_text="updated").locator(".num")).to_have_text("1")

    page.goto(site.url + "/search?q=" + UPDATE_PHRASE)
    first = page.locator("li.result").first
    expect(first.locator("a.result-title")).to_have_text(record.title)
    expect(first.locator(".snippet")).to_contain_text(UPDATE_PHRASE)


def test_a_page_with_script_payloads_renders_inert(site: Site) -> None:
    crawled(site)
    key = f"{site.source_id}:{site.hostile_id}"
    page = site.new_page()
    page.goto(site.url + "/search?q=zebrafish+onboarding")
    hit = page.locator("li.result").first
    expect(hit.locator("a.result-title")).to_have_text(HOSTILE_TITLE)
    hit.get_by_role("link", name="Indexed page").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE_TITLE)
    assert page.url.split("/pages/")[1].replace("%3A", ":").replace("%2B", "+") == key
    expect(page.locator(".markdown")).to_contain_text("zebrafish onboarding")
    expect(page.locator(".markdown")).to_contain_text("<script>window.__pwned = 1")
    page.wait_for_timeout(300)  # give any payload a moment to run
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("script:not([src])").count() == 0
    assert page.locator('a[href^="javascript:" i]').count() == 0
    assert page.locator("img[onerror], [onload], [onclick]").count() == 0
    assert site.dialogs == []


def test_keyboard_and_phone_layout(site: Site) -> None:
    page = site.new_page(width=390, height=844)
    page.goto(site.url + "/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways on a phone by {overflow}px"
    page.goto(site.url + "/search?q=deploy")
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    site.shot(page, "search-phone")


def test_progress_falls_back_to_polling_when_the_event_stream_fails(site: Site) -> None:
    crawled(site)
    # Every request to Confluence waits at a gate, so the sync is still running when the page
    # shows it, until the page has polled; then the gate opens and the sync completes.
    gate = site.emulator.state.gates.add()
    page = site.new_page()
    streams: list[str] = []
    polls: list[str] = []
    polled = re.compile(r"/api/progress/[^/]+$")

    def refuse_stream(route: Route) -> None:
        streams.append(route.request.url)
        route.abort()

    page.route(re.compile(r"/api/progress/[^/]+/events$"), refuse_stream)
    page.on(
        "request",
        lambda request: polls.append(request.url) if polled.search(request.url) else None,
    )
    try:
        page.goto(site.url + "/")
        with page.expect_request(lambda request: bool(polled.search(request.url))):
            page.get_by_role("button", name="Sync now").click()
            job = page.locator("section.job[data-progress-id]")
            expect(job).to_be_visible()
            expect(job).to_have_attribute("data-status", re.compile("queued|running"))
        gate.release()
        expect(job).to_have_attribute("data-status", "completed", timeout=CRAWL_TIMEOUT_MS)
        expect(job.locator('[data-field="percent"]')).to_have_text("100%")
    finally:
        site.emulator.state.gates.remove(gate)
    assert streams, "the page did not try the event stream first"
    assert polls, "the page did not poll after the stream failed"
    expect(page.locator(".summary")).to_contain_text("Last sync completed", timeout=15_000)


def test_delete_removes_the_source_and_its_results(site: Site) -> None:
    crawled(site)
    page = site.new_page()
    page.goto(site.url + "/")
    pages_indexed = page.locator('[data-field="pages"]').inner_text()
    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Delete")
    expect(page.locator(".panel")).to_contain_text(f"{pages_indexed} pages")
    page.get_by_role("button", name=re.compile("^Delete ")).click()
    expect(page.get_by_role("status")).to_contain_text("Source deleted")
    expect(page.get_by_role("heading", name="No spaces yet")).to_be_visible()
    assert site.api.get("/api/confluence/sources").json()["count"] == 0

    page.goto(site.url + "/search?q=" + UPDATE_PHRASE)
    expect(page.get_by_role("heading", name="Nothing to search yet")).to_be_visible()
    assert page.locator("li.result").count() == 0
    hits = site.api.post("/api/search", json={"query": UPDATE_PHRASE, "retriever": "keyword"})
    assert hits.status_code == 200 and hits.json()["count"] == 0
    assert site.dialogs == []
