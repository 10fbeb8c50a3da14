"""A Django-free client for Kitsu's JSON:API and OAuth endpoints.

`Transport` sends requests (auth, timeouts, rate limit, retries), `KitsuClient` names the
resources, `oauth` holds the token grants, `jsonapi` deserialises, `errors` types failures.
"""

from __future__ import annotations

from kitsu_sync.kitsu_api.client import (
    MAX_LIBRARY_PAGE_LIMIT,
    MAX_PAGE_LIMIT,
    SEASONS,
    KitsuClient,
    format_since,
)
from kitsu_sync.kitsu_api.errors import (
    KitsuBadRequest,
    KitsuClientError,
    KitsuConnectionError,
    KitsuError,
    KitsuForbidden,
    KitsuInvalidClient,
    KitsuInvalidGrant,
    KitsuNotAcceptable,
    KitsuNotFound,
    KitsuOAuthError,
    KitsuRateLimited,
    KitsuRateLimiterUnavailable,
    KitsuRateLimitTimeout,
    KitsuResponseError,
    KitsuServerError,
    KitsuTimeout,
    KitsuUnauthorized,
    KitsuUnreachable,
    KitsuUnsupportedGrantType,
    KitsuUnsupportedMediaType,
    KitsuUsageError,
    KitsuValidationError,
    error_for_response,
)
from kitsu_sync.kitsu_api.jsonapi import Document, Relationship, Resource, parse_document
from kitsu_sync.kitsu_api.oauth import (
    TokenResponse,
    authorization_code_grant,
    authorize_url,
    password_grant,
    refresh_grant,
    revoke_token,
    token_info,
)
from kitsu_sync.kitsu_api.ratelimit import RateLimiter, make_rate_limiter
from kitsu_sync.kitsu_api.transport import (
    DEFAULT_USER_AGENT,
    RetryPolicy,
    Transport,
    TransportResponse,
)

__all__ = [
    "DEFAULT_USER_AGENT",
    "MAX_LIBRARY_PAGE_LIMIT",
    "MAX_PAGE_LIMIT",
    "SEASONS",
    "Document",
    "KitsuBadRequest",
    "KitsuClient",
    "KitsuClientError",
    "KitsuConnectionError",
    "KitsuError",
    "KitsuForbidden",
    "KitsuInvalidClient",
    "KitsuInvalidGrant",
    "KitsuNotAcceptable",
    "KitsuNotFound",
    "KitsuOAuthError",
    "KitsuRateLimitTimeout",
    "KitsuRateLimited",
    "KitsuRateLimiterUnavailable",
    "KitsuResponseError",
    "KitsuServerError",
    "KitsuTimeout",
    "KitsuUnauthorized",
    "KitsuUnreachable",
    "KitsuUnsupportedGrantType",
    "KitsuUnsupportedMediaType",
    "KitsuUsageError",
    "KitsuValidationError",
    "RateLimiter",
    "Relationship",
    "Resource",
    "RetryPolicy",
    "TokenResponse",
    "Transport",
    "TransportResponse",
    "authorization_code_grant",
    "authorize_url",
    "error_for_response",
    "format_since",
    "make_rate_limiter",
    "parse_document",
    "password_grant",
    "refresh_grant",
    "revoke_token",
    "token_info",
]
