"""What an HTTP app built by ``create_app`` carries, as FastAPI dependencies the JSON API and the
web UI both use: its services and settings (on ``app.state``, never in a module global, so
several apps with different settings run side by side in one process), and the name of the
cookie the web UI keeps the API token in.

It sits outside ``api/`` and ``web/`` so that neither imports the other.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from confluence_rag.services import Services
from confluence_rag.settings import Settings

# The web UI keeps the API token in this HttpOnly, SameSite=Strict cookie after its /login page
# (an EventSource cannot send an Authorization header). Accepted for GET only: a cookie is sent
# by the browser on its own, so it must never authorise a state change on the JSON API.
UI_TOKEN_COOKIE = "crag_token"


def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        # Only reachable if the app is served without running its lifespan.
        raise RuntimeError("the app's services are not started (lifespan did not run)")
    return services


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ServicesDep = Annotated[Services, Depends(get_services)]
