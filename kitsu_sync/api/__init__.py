"""The JSON API under /api/v1/ (django-ninja): scrobbling, the user's list, anime search, and
the media servers' webhooks. OpenAPI at /api/v1/openapi.json, an interactive page at
/api/v1/docs. Every error is problem JSON (RFC 9457) that says what to do; docs/api.md.
"""

from __future__ import annotations

import logging

from csp.decorators import csp_update
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from kitsu_sync.api import library, scrobbling, webhooks
from kitsu_sync.api.auth import API_KEY_AUTH
from kitsu_sync.api.problems import Problem, problem

logger = logging.getLogger(__name__)

api = NinjaAPI(
    title="Revenge Kitsu sync",
    version="1",
    description=(
        "Scrobble watched episodes, read and edit your list, and receive Jellyfin, Plex and "
        "Emby webhooks. Authenticate with an API key from your dashboard, sent as "
        "`Authorization: Bearer <key>` or `X-Api-Key: <key>` (webhooks also take `?key=`)."
    ),
    urls_namespace="api-v1",
    auth=API_KEY_AUTH,
    # Swagger UI's stylesheet draws its icons as data: SVG images; only this page allows them.
    docs_decorator=csp_update({"img-src": ["data:"]}),
)
api.add_router("/", scrobbling.router)
api.add_router("/", library.router)
api.add_router("/webhooks", webhooks.router)


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return problem(
        request,
        401,
        "A valid API key is needed",
        "Send your API key as `Authorization: Bearer <key>` or `X-Api-Key: <key>` (webhooks "
        "also take `?key=<key>`). Create one on your dashboard; a revoked key no longer works.",
        headers={"WWW-Authenticate": 'Bearer realm="revenge"'},
    )


@api.exception_handler(Problem)
def answered_problem(request: HttpRequest, exc: Problem) -> HttpResponse:
    return problem(request, exc.status, exc.title, exc.detail, **exc.extensions)


@api.exception_handler(ValidationError)
def invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = [
        {
            "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body"),
            "message": error.get("msg", ""),
        }
        for error in exc.errors
    ]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "The request is invalid."
    return problem(request, 422, "The request's values are not valid", detail, errors=fields)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem(request, 404, "Not found", str(exc) or "There is nothing here for this key.")


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return problem(request, exc.status_code, exc.message, exc.message)


@api.exception_handler(Exception)
def failed(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Logged with its traceback for the administrator; the caller gets JSON, not a debug page.
    logger.exception("The API failed on %s %s", request.method, request.path)
    return problem(
        request,
        500,
        "Revenge failed to answer",
        "Something went wrong on this server; nothing was half-done that would be lost. Try "
        "again, and if it keeps failing, the administrator will find the error in the logs.",
    )
