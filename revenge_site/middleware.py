"""The site's own middleware: request ids for log lines, and the browser policies.

- `RequestIdMiddleware` gives each request an id (a sane `X-Request-ID` from the proxy, or a
  new one), returns it in the response's `X-Request-ID`, and puts it, with the signed-in user's
  id, in the log context (kitsu_sync.logcontext) that every log line carries.
- `ContentSecurityPolicyMiddleware` is django-csp's, plus the origins of the Kitsu the site is
  configured with (settings.CONTENT_SECURITY_POLICY has the rest).
- `PermissionsPolicyMiddleware` sends `Permissions-Policy`, denying the browser features the
  site never uses (settings.PERMISSIONS_POLICY).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponseBase

from kitsu_sync import logcontext

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy's id may look like (a UUID, nginx's $request_id, ...): short, and nothing that
# could forge a log line or a header.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_for(request: HttpRequest) -> str:
    """The proxy's request id when it is sane, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    if _SANE_REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def _forget_request(**kwargs: Any) -> None:
    logcontext.clear()


class RequestIdMiddleware:
    """First in MIDDLEWARE, so that every log line of the request has the id.

    The context is cleared when the response is finished (`request_finished`), not when this
    middleware returns: Django logs a 4xx or 5xx answer ("Not Found: /x") after the middleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        request_finished.connect(_forget_request, dispatch_uid="revenge-log-context")

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = request_id_for(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        logcontext.start(request_id=request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response

    def process_view(self, request: HttpRequest, *args: Any) -> None:
        # The authentication middleware has run by now: who is asking is known.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            logcontext.bind(user_id=user.pk)


def origin(url: str) -> str:
    """scheme://host[:port] of a URL, without any user name or password in it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, adding the configured Kitsu's origins to the policy.

    Read at each response rather than at start-up because they are settings of their own
    (KITSU_API_URL, KITSU_OAUTH_URL): images may come from the Kitsu API's host (the sandbox
    serves the posters it advertises itself), and "Link Kitsu" posts a form that redirects to
    Kitsu's authorize page, which `form-action` must allow (Chromium checks it on redirects).
    """

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        update = dict(parts.update or {})
        additions = {
            "img-src": origin(settings.KITSU_API_URL),
            "form-action": origin(settings.KITSU_OAUTH_URL),
        }
        for directive, source in additions.items():
            given = update.get(directive) or ()
            given = [given] if isinstance(given, str) else list(given)
            update[directive] = [*given, source]
        parts.update = update
        return parts


class PermissionsPolicyMiddleware:
    """`Permissions-Policy`: each feature in settings.PERMISSIONS_POLICY with the origins
    allowed to use it (none: denied everywhere, this site included)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.header = ", ".join(
            f"{feature}=({' '.join(allowed)})"
            for feature, allowed in settings.PERMISSIONS_POLICY.items()
        )

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if self.header:
            response.setdefault("Permissions-Policy", self.header)
        return response
