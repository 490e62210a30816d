"""The error a Confluence REST call answers with; `app.py` renders it as Confluence does.

It is internal to the emulator (a *response*, not a failure of confluence-rag), so it does not
belong to the ``confluence_rag.errors`` tree.
"""

from __future__ import annotations

from http import HTTPStatus


class ConfluenceApiError(Exception):
    """An HTTP error response: ``statusCode``, ``message``, ``reason``, ``data`` like the real
    server (see `shapes.error_body`)."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    @property
    def reason(self) -> str:
        return HTTPStatus(self.status).phrase
