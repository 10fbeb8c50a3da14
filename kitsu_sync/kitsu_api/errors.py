"""Typed errors for the Kitsu client.

`error_for_response` is the one place that turns an HTTP status and body into an exception.
Every exception says whether trying again later can help (`retryable`), and none of them ever
carries a token or a password: only Kitsu's own error titles and details.
"""

from __future__ import annotations

from typing import Any


class KitsuError(Exception):
    """Base of every error the Kitsu client raises."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors = errors or []
        self.retry_after = retry_after


class KitsuConnectionError(KitsuError):
    """Kitsu could not be reached, or the connection broke mid-response."""

    retryable = True


class KitsuTimeout(KitsuConnectionError):
    """Kitsu did not answer within the timeout."""


class KitsuUnreachable(KitsuConnectionError):
    """No connection could be made (refused, DNS, connect timeout): the request never left.

    This is the one failure after which even a POST may be sent again.
    """


class KitsuResponseError(KitsuError):
    """Kitsu answered with a body that is not the JSON it should be (truncated, HTML, ...)."""

    retryable = True


class KitsuResponseTooLarge(KitsuResponseError):
    """Kitsu's answer grew past the size cap: asking again would download as much again."""

    retryable = False


class KitsuServerError(KitsuError):
    """5xx: Kitsu (or Cloudflare in front of it) failed; a later attempt may work."""

    retryable = True


class KitsuRateLimited(KitsuError):
    """429. Kitsu's Rack::Attack sends plain text and no Retry-After; back off on our own."""

    retryable = True


class KitsuClientError(KitsuError):
    """4xx that repeating the same request will not fix."""


class KitsuBadRequest(KitsuClientError):
    """400: bad filter, page limit over the maximum, unknown field..."""


class KitsuFieldsRefused(KitsuBadRequest):
    """400 "Invalid field" (JSON:API error code 104): a sparse fieldset names a field this
    Kitsu does not know (any more). Asking for whole resources works (docs/kitsu-api.md §4.4)."""


# jsonapi-resources' code for "Invalid field" (JSONAPI::INVALID_FIELD).
INVALID_FIELD_CODE = "104"


class KitsuUnauthorized(KitsuClientError):
    """401: the access token is expired or revoked (refreshing it may help)."""


class KitsuForbidden(KitsuClientError):
    """403: a policy refused the request (someone else's entry, or no token on a write)."""


class KitsuNotFound(KitsuClientError):
    """404: no such record, or one hidden from this caller (R18, private)."""


class KitsuNotAcceptable(KitsuClientError):
    """406: the Accept header was not acceptable."""


class KitsuUnsupportedMediaType(KitsuClientError):
    """415: a write was sent without `application/vnd.api+json`."""


class KitsuValidationError(KitsuClientError):
    """422: Kitsu's model validation refused a write (see `errors` for each field)."""


class KitsuUsageError(KitsuError, ValueError):
    """The caller asked for something the client will not send (bad season, page limit, id)."""


class KitsuRateLimitTimeout(KitsuError):
    """Our own rate limiter found no free slot before the caller's deadline."""

    retryable = True


class KitsuRateLimiterUnavailable(KitsuError):
    """The shared rate limiter's storage (Redis) could not be reached."""

    retryable = True


class KitsuOAuthError(KitsuError):
    """An error from the OAuth token endpoint: `{"error": code, "error_description": text}`."""

    def __init__(self, message: str, *, code: str, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.code = code


class KitsuInvalidGrant(KitsuOAuthError):
    """Wrong login or password, or a used, expired or revoked refresh token."""


class KitsuInvalidClient(KitsuOAuthError):
    """The client id or secret is unknown to Kitsu."""


class KitsuUnsupportedGrantType(KitsuOAuthError):
    """The grant is switched off (kitsu.app enables only password and refresh_token)."""


_STATUS_ERRORS: dict[int, type[KitsuError]] = {
    400: KitsuBadRequest,
    401: KitsuUnauthorized,
    403: KitsuForbidden,
    404: KitsuNotFound,
    406: KitsuNotAcceptable,
    415: KitsuUnsupportedMediaType,
    422: KitsuValidationError,
    429: KitsuRateLimited,
}

_OAUTH_ERRORS: dict[str, type[KitsuOAuthError]] = {
    "invalid_grant": KitsuInvalidGrant,
    "invalid_client": KitsuInvalidClient,
    "unsupported_grant_type": KitsuUnsupportedGrantType,
}


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        text = error.get("detail") or error.get("title")
        if text:
            parts.append(str(text))
    return "; ".join(parts)


def error_for_response(
    status: int,
    body: Any,
    *,
    retry_after: float | None = None,
    location: str | None = None,
) -> KitsuError:
    """Map a non-2xx response to the matching exception.

    `body` is the decoded JSON body when there was one, otherwise the raw text (or None).
    `location` is the Location header of a redirect, which the client never follows.
    """
    if 300 <= status < 400:
        # kitsu.io moved to kitsu.app (Aug 2024) and now redirects; following a redirect can
        # turn a POST into a GET and drops the Authorization header, so say what to change.
        where = f" to {location}" if location else ""
        return KitsuClientError(
            f"Kitsu redirected the request{where} (HTTP {status}); "
            "set the Kitsu API and OAuth URLs to the current address (https://kitsu.app/...).",
            status=status,
        )
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = body["error"]
        description = body.get("error_description") or code
        oauth_class = _OAUTH_ERRORS.get(code, KitsuOAuthError)
        return oauth_class(str(description), code=code, status=status)

    errors: list[dict[str, Any]] = []
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        errors = [e for e in body["errors"] if isinstance(e, dict)]
    detail = _describe(errors)

    if status == 429:
        return KitsuRateLimited(
            "Kitsu is rate limiting these requests; try again shortly.",
            status=status,
            errors=errors,
            retry_after=retry_after,
        )
    if status >= 500:
        return KitsuServerError(
            f"Kitsu failed with HTTP {status}" + (f": {detail}" if detail else "."),
            status=status,
            errors=errors,
            retry_after=retry_after,
        )
    error_class = _STATUS_ERRORS.get(status, KitsuClientError)
    if status == 400 and any(str(error.get("code")) == INVALID_FIELD_CODE for error in errors):
        error_class = KitsuFieldsRefused
    return error_class(
        detail or f"Kitsu refused the request with HTTP {status}.",
        status=status,
        errors=errors,
    )
