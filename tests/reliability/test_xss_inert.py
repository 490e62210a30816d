"""XSS payloads in everything Confluence lets an author write (page titles, bodies, labels, the
space name and so the breadcrumbs of every page) are crawled for real and then shown by the real
UI in a real browser (Debian chromium through Playwright, as ``tests/web``): nothing runs (no
dialog, no marker set on ``window``), no element is injected, and the payload shows as text. In
``/api/search`` JSON the snippet is escaped HTML whose only tags are ``<mark>``.

Every payload sets ``window.__xss`` and opens a dialog if it ever runs, so a single test of both
catches any of them, wherever it is rendered.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from confluence_rag.api.app import create_app
from confluence_rag.emulator import EmulatorConfig, EmulatorServer
from confluence_rag.settings import Settings
from tests.api.conftest import ApiServer, source_body
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def payload(where: str) -> str:
    """An attribute-breaking image whose onerror would mark ``window`` and open a dialog."""
    return f"\"'><img src=x onerror=\"window.__xss='{where}';alert('{where}')\">"


SPACE_NAME = "Wombat space " + payload("space")
PARENT_TITLE = "Quokka parent " + payload("parent-title")
CHILD_TITLE = "Quokka child <script>window.__xss='child-title';alert('child-title')</script>"
LABELS = ["quokka", "<svg/onload=alert('label')>", "x\"><script>alert('label2')</script>"]
CHILD_BODY = (
    "<p>Quokka field notes: the quokka hops.</p>"
    # Text that looks like markup (entities in storage format): must stay text.
    "<p>&lt;script&gt;window.__xss='body-text';alert('body-text')&lt;/script&gt; and "
    "&lt;img src=x onerror=&quot;window.__xss='body-img';alert('body-img')&quot;&gt;</p>"
    # Real elements: dropped or defused by the converter.
    "<script>window.__xss='body-script';alert('body-script')</script>"
    "<p><img src=\"x\" onerror=\"window.__xss='body-onerror';alert('body-onerror')\"/></p>"
    "<p><a href=\"javascript:window.__xss='body-link';alert('body-link')\">quokka link</a></p>"
    "<iframe src=\"javascript:alert('iframe')\"></iframe>"
    # Markdown-shaped text: must not become a live link.
    "<p>[quokka click](javascript:alert('md-link')) and ![x](javascript:alert('md-img'))</p>"
    # The HTML macro, and a code block trying to close its own element.
    '<ac:structured-macro ac:name="html"><ac:plain-text-body><![CDATA['
    "<script>window.__xss='html-macro';alert('html-macro')</script>"
    "]]></ac:plain-text-body></ac:structured-macro>"
    '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">html</ac:parameter>'
    "<ac:plain-text-body><![CDATA[</code></pre><script>alert('code')</script> quokka_code]]>"
    "</ac:plain-text-body></ac:structured-macro>"
)
INJECTED = (
    "script:not([src]), img[onerror], svg[onload], iframe, [onload], [onerror], [onclick],"
    ' a[href^="javascript:" i]'
)


@dataclass
class Site:
    url: str
    browser: Browser
    api: httpx.Client
    source_id: str
    child_key: str
    parent_key: str
    dialogs: list[str] = field(default_factory=list)

    def open(self, path: str) -> Page:
        page = self.browser.new_context().new_page()
        page.set_default_timeout(20_000)
        page.on("dialog", self._dialog)
        page.goto(self.url + path)
        return page

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def assert_inert(site: Site, page: Page) -> None:
    page.wait_for_timeout(300)  # give any payload a moment to run
    assert page.evaluate("typeof window.__xss") == "undefined", page.evaluate("window.__xss")
    injected = page.locator(INJECTED)
    assert injected.count() == 0, [injected.nth(i).evaluate("e => e.outerHTML") for i in range(3)]
    assert site.dialogs == []


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("xss")
    with (
        pytest.MonkeyPatch.context() as patch,
        FakeEmbeddingServer(dimension=32) as embeddings,
        EmulatorServer(
            EmulatorConfig(flavour="cloud", pages=4, extra_spaces={}, space_name=SPACE_NAME)
        ) as emulator,
    ):
        # The module outlives the per-test isolation: isolate the environment here as well.
        for name in list(os.environ):
            if name.startswith("CONFLUENCE_RAG_"):
                patch.delenv(name)
        for name, value in embeddings.settings_env().items():
            patch.setenv(name, value)
        patch.chdir(root)
        parent = emulator.state.add_page(PARENT_TITLE, "<p>Quokka parent page body.</p>")
        child = emulator.state.add_page(CHILD_TITLE, CHILD_BODY, parent_id=parent.id)
        for label in LABELS:
            emulator.state.add_label(child.id, label)
        server = ApiServer(create_app(Settings(data_dir=root / "data"))).start()
        api = httpx.Client(base_url=server.url, timeout=30)
        try:
            added = api.post(
                "/api/confluence/sources",
                json=source_body(emulator),
            )
            assert added.status_code == 201, added.text
            source_id = added.json()["source_id"]
            deadline = time.monotonic() + 180  # generous: the machine may be busy
            progress = f"/api/progress/{added.json()['progress_id']}"
            while (job := api.get(progress).json())["status"] in ("queued", "running"):
                assert time.monotonic() < deadline, job
                time.sleep(0.1)
            assert job["status"] == "completed", job
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                try:
                    yield Site(
                        server.url,
                        browser,
                        api,
                        source_id,
                        child_key=f"{source_id}:{child.id}",
                        parent_key=f"{source_id}:{parent.id}",
                    )
                finally:
                    browser.close()
        finally:
            api.close()
            server.stop()


def test_the_stored_page_keeps_the_payloads_as_data(site: Site) -> None:
    """The crawl stored what Confluence said (the UI's job is to show it safely)."""
    page = site.api.get(f"/api/pages/{site.child_key}").json()
    assert page["title"] == CHILD_TITLE
    assert set(page["labels"]) == set(LABELS)
    assert PARENT_TITLE in page["breadcrumb"] and SPACE_NAME in page["breadcrumb"]


def test_search_results_render_inert(site: Site) -> None:
    page = site.open("/search?q=quokka")
    results = page.locator("li.result")
    expect(results.first).to_be_visible()
    titles = page.locator("a.result-title").all_inner_texts()
    assert CHILD_TITLE in titles and PARENT_TITLE in titles
    child = results.filter(has_text="Quokka child").first
    expect(child).to_contain_text(LABELS[1])  # the label shown as text
    expect(child).to_contain_text(SPACE_NAME)  # in the breadcrumb, as text
    assert_inert(site, page)
    # The pages view and the code tab render the same data differently.
    pages = site.open("/search?q=quokka&view=pages")
    expect(pages.locator("a.result-title", has_text="Quokka child")).to_have_count(1)
    assert_inert(site, pages)
    code = site.open("/search?q=quokka_code&tab=code")
    expect(code.locator("main")).to_contain_text("</code></pre><script>alert('code')</script>")
    assert_inert(site, code)


def test_the_page_view_and_knowledge_base_render_inert(site: Site) -> None:
    page = site.open(f"/pages/{quote(site.child_key, safe='')}")
    expect(page.get_by_role("heading", level=1)).to_have_text(CHILD_TITLE)
    expect(page.locator("body")).to_contain_text("<script>window.__xss='body-text'")
    expect(page.locator(".labels")).to_contain_text(LABELS[2])
    assert_inert(site, page)
    parent = site.open(f"/pages/{quote(site.parent_key, safe='')}")
    expect(parent.get_by_role("heading", level=1)).to_have_text(PARENT_TITLE)
    assert_inert(site, parent)
    home = site.open("/")
    expect(home.locator("body")).to_contain_text("Wombat space")
    assert_inert(site, home)


def test_api_snippets_are_escaped_with_only_mark_tags(site: Site) -> None:
    for body in (
        {"query": "quokka", "limit": 20},
        {"query": "script alert xss onerror", "limit": 20, "retriever": "keyword"},
        {"query": "quokka", "limit": 20, "mode": "pages"},
    ):
        response = site.api.post("/api/search", json=body)
        assert response.status_code == 200, response.text
        hits = response.json()["results"]
        assert hits, body
        for hit in hits:
            bare = re.sub(r"</?mark>", "", hit["snippet_html"])
            assert "<" not in bare and ">" not in bare, hit["snippet_html"]
    # The payload words are found, and come back escaped.
    hits = site.api.post(
        "/api/search", json={"query": "onerror", "retriever": "keyword", "limit": 20}
    ).json()["results"]
    assert any("&lt;" in hit["snippet_html"] for hit in hits), hits
