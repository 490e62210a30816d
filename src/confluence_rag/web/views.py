"""The web UI's routes: knowledge base, add a space, search, page view, login.

Mounted on the HTTP app by ``api/app.py`` (``mount_web(app)``) and built on the same services,
so the UI holds no business logic: every view is one or two service calls and a template. It
never imports ``api/``: the app's services come from ``app_state``, the output models it shares
with the API and the CLI from ``presenters``. Forms post back to the server
(Post/Redirect/Get) and work without JavaScript; ``static/app.js`` only adds live progress, copy
buttons and the token field switch.

Every state-changing post passes ``security.check_csrf``; every page goes out with the CSP from
``security.CSP``; when an API token is configured every route but ``/login`` needs the cookie.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from confluence_rag.app_state import ServicesDep
from confluence_rag.errors import (
    ConfluenceRagError,
    EmbeddingError,
    IndexModelMismatch,
    InvalidInput,
    JobAlreadyRunning,
    NotFound,
)
from confluence_rag.presenters import ProgressOut, SourceOut, progress_out, source_out
from confluence_rag.records import JobRecord, SearchFilters, SourceRecord
from confluence_rag.search.models import CodeHit, SearchHit, SearchMode
from confluence_rag.search.validation import MAX_QUERY_CHARS
from confluence_rag.services import Services
from confluence_rag.web.forms import (
    SYNC_CHOICES,
    AddSourceForm,
    parse_form,
    place_error,
    to_new_source,
)
from confluence_rag.web.render import render_markdown
from confluence_rag.web.security import (
    CSRF_FIELD,
    CSRFError,
    add_security_headers,
    check_csrf,
    safe_next,
    set_login_cookie,
    token_matches,
    ui_token_ok,
)
from confluence_rag.web.templating import Pages

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SEARCH_LIMIT = 20
NOTICES = {
    "added": "Source added. Its first crawl is running below.",
    "sync": "Sync started.",
    "running": "A job is already running for this source; follow it below.",
    "paused": "Automatic syncs paused.",
    "resumed": "Automatic syncs resumed.",
    "deleted": "Source deleted with all its pages, chunks and credentials.",
    "cancel": "Cancel requested; the job stops after the page it is on.",
}


class LoginRequired(Exception):
    """The UI needs the API token cookie first (answered with a redirect to /login)."""

    def __init__(self, next_path: str) -> None:
        super().__init__("login required")
        self.next_path = next_path


def require_login(request: Request) -> None:
    if not ui_token_ok(request, request.app.state.settings):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)


Login = Annotated[None, Depends(require_login)]
router = APIRouter(include_in_schema=False)


def pages_of(request: Request) -> Pages:
    pages: Pages = request.app.state.web_pages
    return pages


# --- knowledge base -----------------------------------------------------------------------------
@dataclass
class SourceCard:
    source: SourceOut
    active: ProgressOut | None
    last: ProgressOut | None
    last_result: dict[str, Any]


async def source_card(services: Services, record: SourceRecord) -> SourceCard:
    jobs: list[JobRecord] = await services.jobs.list(active_only=False, source_id=record.id)
    active = next((j for j in jobs if j.status in ("queued", "running")), None)
    last = next((j for j in jobs if j.status not in ("queued", "running")), None)
    return SourceCard(
        source=source_out(record, active_job=active),
        active=progress_out(active) if active else None,
        last=progress_out(last) if last else None,
        last_result=dict(last.result or {}) if last else {},
    )


@router.get("/", response_class=HTMLResponse)
async def knowledge_base(
    request: Request,
    services: ServicesDep,
    _: Login,
    notice: str | None = None,
    source: str | None = None,
) -> Response:
    cards = [await source_card(services, record) for record in await services.sources.list()]
    return pages_of(request).render(
        request,
        "index.html",
        {
            "cards": cards,
            "notice": NOTICES.get(notice or ""),
            "highlight": source,
        },
    )


def back_home(notice: str, source_id: str | None = None) -> RedirectResponse:
    query = {"notice": notice}
    if source_id:
        query["source"] = source_id
    return RedirectResponse("/?" + urlencode(query), status_code=303)


async def posted_form(request: Request) -> dict[str, Any]:
    form = await request.form()
    check_csrf(request, _text(form.get(CSRF_FIELD)))
    data: dict[str, Any] = {key: form.get(key) for key in form}
    data["page_types"] = [v for v in form.getlist("page_types") if isinstance(v, str)]
    return data


@router.post("/sources/{source_id}/sync")
async def sync_now(request: Request, source_id: str, services: ServicesDep, _: Login) -> Response:
    await posted_form(request)
    try:
        await services.jobs.submit(source_id, "sync")
    except JobAlreadyRunning:
        return back_home("running", source_id)
    return back_home("sync", source_id)


@router.post("/sources/{source_id}/pause")
async def pause(request: Request, source_id: str, services: ServicesDep, _: Login) -> Response:
    await posted_form(request)
    await services.sources.update(source_id, paused=True)
    return back_home("paused", source_id)


@router.post("/sources/{source_id}/resume")
async def resume(request: Request, source_id: str, services: ServicesDep, _: Login) -> Response:
    await posted_form(request)
    await services.sources.update(source_id, paused=False)
    return back_home("resumed", source_id)


@router.get("/sources/{source_id}/delete", response_class=HTMLResponse)
async def confirm_delete(
    request: Request, source_id: str, services: ServicesDep, _: Login
) -> Response:
    card = await source_card(services, await services.sources.get(source_id))
    return pages_of(request).render(request, "delete.html", {"card": card})


@router.post("/sources/{source_id}/delete")
async def delete(request: Request, source_id: str, services: ServicesDep, _: Login) -> Response:
    await posted_form(request)
    await services.sources.delete(source_id)
    return back_home("deleted")


@router.post("/jobs/{job_id}/cancel")
async def cancel(request: Request, job_id: str, services: ServicesDep, _: Login) -> Response:
    await posted_form(request)
    job = await services.jobs.cancel(job_id)
    return back_home("cancel", job.source_id)


# --- add a space --------------------------------------------------------------------------------
def render_add_form(request: Request, form: AddSourceForm, status_code: int = 200) -> Response:
    return pages_of(request).render(
        request,
        "add.html",
        {"form": form.values(), "errors": form.errors, "sync_choices": SYNC_CHOICES},
        status_code=status_code,
    )


@router.get("/sources/new", response_class=HTMLResponse)
async def add_form(request: Request, _: Login) -> Response:
    return render_add_form(request, AddSourceForm())


@router.post("/sources/new", response_class=HTMLResponse)
async def add_source(request: Request, services: ServicesDep, _: Login) -> Response:
    data = await posted_form(request)
    form = parse_form(data, data["page_types"])
    if form.errors:
        return render_add_form(request, form, 400)
    try:
        source, _job = await services.sources.add(to_new_source(form), start=True)
    except ConfluenceRagError as error:
        name, message = place_error(form, error)
        form.errors[name] = message
        status = error.status_code if 400 <= error.status_code < 600 else 400
        return render_add_form(request, form, status)
    return back_home("added", source.id)


# --- search -------------------------------------------------------------------------------------
@dataclass
class SearchForm:
    q: str
    source: str
    space: str
    label: str
    type: str
    updated_after: str
    view: SearchMode
    tab: str

    def filters(self) -> SearchFilters:
        after: datetime | None = None
        if self.updated_after:
            try:
                day = date.fromisoformat(self.updated_after)
            except ValueError:
                raise InvalidInput(
                    "updated after must be a date like 2024-01-31", details={"field": "updated"}
                ) from None
            after = datetime.combine(day, time.min, tzinfo=UTC)
        return SearchFilters(
            source_id=self.source or None,
            spaces=(self.space,) if self.space else (),
            labels=tuple(part.strip() for part in self.label.split(",") if part.strip()),
            page_types=(self.type,) if self.type in ("page", "blogpost") else (),
            updated_after=after,
        )

    def link(self, **changes: str) -> str:
        values = {**self.__dict__, **changes}
        return "/search?" + urlencode({k: v for k, v in values.items() if v})


@router.get("/search", response_class=HTMLResponse)
async def search(
    request: Request,
    services: ServicesDep,
    _: Login,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)] = "",
    source: str = "",
    space: str = "",
    label: str = "",
    type: str = "",
    updated_after: str = "",
    view: str = "pages",
    tab: str = "text",
) -> Response:
    form = SearchForm(
        q=q.strip(),
        source=source,
        space=space,
        label=label,
        type=type,
        updated_after=updated_after,
        view="chunks" if view == "chunks" else "pages",
        tab="code" if tab == "code" else "text",
    )
    records = await services.sources.list()
    hits: list[SearchHit] = []
    code_hits: list[CodeHit] = []
    error: str | None = None
    status = 200
    if form.q:
        try:
            filters = await services.filters.check(form.filters())
            if form.tab == "code":
                code_hits = await services.search.search_code(
                    form.q, filters=filters, limit=SEARCH_LIMIT
                )
            else:
                hits = await services.search.search(
                    form.q, filters=filters, limit=SEARCH_LIMIT, mode=form.view
                )
        except InvalidInput as exc:
            error, status = f"{exc.message}. Change the query or the filters.", 400
        except IndexModelMismatch as exc:
            error, status = f"{exc.message} Re-crawl the sources with the configured model.", 409
        except EmbeddingError as exc:
            error = (
                f"{exc.message} Semantic search is unavailable; check the embedding settings "
                "and the server log."
            )
            status = 503
    spaces = sorted({key for record in records for key in record.space_keys})
    return pages_of(request).render(
        request,
        "search.html",
        {
            "form": form,
            "sources": records,
            "spaces": spaces,
            "hits": hits,
            "code_hits": code_hits,
            "error": error,
            "searched": bool(form.q) and error is None,
        },
        status_code=status,
    )


# --- page view ----------------------------------------------------------------------------------
@router.get("/pages/{page_id}", response_class=HTMLResponse)
async def page_view(
    request: Request, page_id: str, services: ServicesDep, _: Login, chunks: bool = False
) -> Response:
    """The indexed page; ``?chunks=1`` adds its chunks as search sees them (loaded only on
    request: a long page has hundreds)."""
    page = await services.pages.get(page_id)
    page_chunks = await services.pages.chunks(page_id) if chunks and not page.is_deleted else None
    context = {
        "page": page,
        "body_html": render_markdown(page.markdown or ""),
        "chunks": page_chunks,
    }
    return pages_of(request).render(request, "page.html", context)


# --- login --------------------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/") -> Response:
    if request.app.state.settings.api_token is None:
        return RedirectResponse("/", status_code=303)
    return pages_of(request).render(request, "login.html", {"next": safe_next(next)})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, _text(form.get(CSRF_FIELD)))
    settings = request.app.state.settings
    target = safe_next(_text(form.get("next")))
    token = _text(form.get("token")).strip()
    if settings.api_token is None:
        return RedirectResponse("/", status_code=303)
    if not token or not token_matches(token, settings):
        return pages_of(request).render(
            request,
            "login.html",
            {"next": target, "error": "That is not the API token this server was started with."},
            status_code=401,
        )
    response = RedirectResponse(target, status_code=303)
    set_login_cookie(response, token, request)
    return response


# --- errors and mounting ------------------------------------------------------------------------
def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    return pages_of(request).render(
        request, "error.html", {"title": title, "message": message}, status_code=status
    )


async def _on_login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    response = RedirectResponse("/login?" + urlencode({"next": exc.next_path}), status_code=303)
    return add_security_headers(response)


async def _on_csrf(request: Request, exc: Exception) -> Response:
    logger.warning("refused a form post to %s: %s", request.url.path, exc)
    return _error_page(request, 403, "Request refused", str(exc))


def _ui_error_handler(api_handler: Any) -> Any:
    """Our errors on UI routes become pages; on /api they keep the JSON shape."""

    async def handle(request: Request, exc: Exception) -> Response:
        path = request.url.path
        if path.startswith(("/api/", "/mcp", "/health", "/docs", "/openapi")):
            response: Response = await api_handler(request, exc)
            return response
        assert isinstance(exc, ConfluenceRagError)
        title = "Not found" if isinstance(exc, NotFound) else "Something went wrong"
        return _error_page(request, exc.status_code, title, exc.message)

    return handle


def mount_web(app: FastAPI) -> None:
    """Serve the UI at ``/`` of ``app`` (after its API routes) with its static files."""
    app.state.web_pages = Pages()
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(LoginRequired, _on_login_required)
    app.add_exception_handler(CSRFError, _on_csrf)
    api_handler = app.exception_handlers.get(ConfluenceRagError)
    if api_handler is not None:
        app.add_exception_handler(ConfluenceRagError, _ui_error_handler(api_handler))
