"""Every failure confluence-rag raises on purpose, under one root.

Surfaces (HTTP API, CLI, MCP, web) translate these into their own shapes at the edge:
``status_code`` is the HTTP status the API answers with, ``code`` the stable machine-readable
name in ``{"error": {"code", "message", "details"}}``, and the message is written for a person.

ConfluenceRagError
├── ConfigurationError            settings missing or invalid (names the setting)
│   └── SecretKeyError            CONFLUENCE_RAG_SECRET_KEY missing, malformed or wrong
├── InvalidInput                  bad user input: URL, space key, label, query, limit (400)
├── NotFound                      an id that does not exist in the index (404)
│   ├── SourceNotFound
│   ├── PageNotFound
│   └── JobNotFound
├── Conflict                      the request clashes with current state (409)
│   └── JobAlreadyRunning         one running job per source; carries the running job's id
├── ConfluenceError               anything that went wrong talking to Confluence
│   ├── InvalidSiteURL            not an http(s) URL (400)
│   │   └── OutboundRefused       the outbound policy refuses the address (SSRF guard, 400)
│   ├── ConfluenceUnreachable     DNS, connect, TLS errors, timeouts after retries (502)
│   ├── AuthenticationFailed      401: wrong email/token or PAT
│   ├── SpaceAccessDenied         403: the user may not read the space
│   ├── SpaceNotFound             404: no such space
│   ├── ContentNotFound           404 on a page / attachment by id
│   ├── InvalidCQL                400 from Confluence on a query we built
│   ├── RetryBudgetExhausted      429/5xx kept coming after every retry
│   ├── AttachmentTooLarge        download over the size cap
│   ├── UnexpectedResponse        a status or payload the client does not understand
│   └── ClientClosed              a request after the client was closed (its job ended)
├── EmbeddingError                the embedding model failed
│   ├── EmbeddingModelUnavailable the local model cannot be loaded (offline, missing package)
│   └── EmbeddingServiceError     an OpenAI-compatible endpoint kept failing
├── StoreError                    the database failed or is in an unexpected state
│   ├── IndexModelMismatch        the index was built by another embedding model / dimension
│   └── StorageFull               the disk is full; the job fails, the index stays usable
└── JobCancelled                  raised inside a job when a cancel was requested
"""

from __future__ import annotations

from typing import Any


class ConfluenceRagError(Exception):
    """Root of every error confluence-rag raises deliberately."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The standard error body: ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ConfigurationError(ConfluenceRagError):
    status_code = 500
    code = "configuration_error"


class SecretKeyError(ConfigurationError):
    code = "secret_key_error"


class InvalidInput(ConfluenceRagError):
    status_code = 400
    code = "invalid_input"


class NotFound(ConfluenceRagError):
    status_code = 404
    code = "not_found"


class SourceNotFound(NotFound):
    code = "source_not_found"


class PageNotFound(NotFound):
    code = "page_not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class Conflict(ConfluenceRagError):
    status_code = 409
    code = "conflict"


class JobAlreadyRunning(Conflict):
    code = "job_already_running"

    def __init__(self, message: str, *, job_id: str, details: dict[str, Any] | None = None):
        super().__init__(message, details={"progress_id": job_id, **(details or {})})
        self.job_id = job_id


class ConfluenceError(ConfluenceRagError):
    status_code = 502
    code = "confluence_error"


class InvalidSiteURL(ConfluenceError):
    status_code = 400
    code = "invalid_site_url"


class OutboundRefused(InvalidSiteURL):
    """A request the outbound policy refuses: metadata/link-local address, a site outside
    ``CONFLUENCE_RAG_ALLOWED_SITES``, a private address when those are blocked, or a redirect or
    link that leaves the site (see ``confluence/outbound.py``)."""

    code = "outbound_refused"


class ConfluenceUnreachable(ConfluenceError):
    status_code = 502
    code = "confluence_unreachable"


class AuthenticationFailed(ConfluenceError):
    status_code = 401
    code = "authentication_failed"


class SpaceAccessDenied(ConfluenceError):
    status_code = 403
    code = "space_access_denied"


class SpaceNotFound(ConfluenceError):
    status_code = 404
    code = "space_not_found"


class ContentNotFound(ConfluenceError):
    status_code = 404
    code = "content_not_found"


class InvalidCQL(ConfluenceError):
    status_code = 400
    code = "invalid_cql"


class RetryBudgetExhausted(ConfluenceError):
    status_code = 503
    code = "retry_budget_exhausted"


class AttachmentTooLarge(ConfluenceError):
    status_code = 413
    code = "attachment_too_large"


class UnexpectedResponse(ConfluenceError):
    status_code = 502
    code = "unexpected_response"


class ClientClosed(ConfluenceError):
    """A request made after the client was closed: late work of a job that has ended (e.g. a
    converter thread looking up user names as the crawl fails). An expected end, not a bug."""

    status_code = 503
    code = "client_closed"


class EmbeddingError(ConfluenceRagError):
    status_code = 503
    code = "embedding_error"


class EmbeddingModelUnavailable(EmbeddingError):
    code = "embedding_model_unavailable"


class EmbeddingServiceError(EmbeddingError):
    code = "embedding_service_error"


class StoreError(ConfluenceRagError):
    status_code = 500
    code = "store_error"


class IndexModelMismatch(StoreError):
    status_code = 409
    code = "index_model_mismatch"


class StorageFull(StoreError):
    status_code = 507
    code = "storage_full"


class JobCancelled(ConfluenceRagError):
    status_code = 409
    code = "job_cancelled"
