"""Kitsu's errors in words a person can act on: during a sync, and while linking an account.

Kitsu's own detail is kept where it helps; tokens never appear (the client's errors carry
none).
"""

from __future__ import annotations

from kitsu_sync.kitsu_api import (
    KitsuConnectionError,
    KitsuError,
    KitsuInvalidClient,
    KitsuInvalidGrant,
    KitsuNotFound,
    KitsuRateLimited,
    KitsuResponseError,
    KitsuServerError,
    KitsuUnauthorized,
    KitsuUnsupportedGrantType,
    KitsuValidationError,
)


def describe_sync_error(error: KitsuError) -> str:
    """What went wrong talking to Kitsu during a sync, and what happens next."""
    if isinstance(error, KitsuValidationError):
        return f"Kitsu refused the change: {error.message}"
    if isinstance(error, KitsuNotFound):
        return (
            "Kitsu no longer has this library entry (deleted there?); a full sync removes it here."
        )
    if isinstance(error, KitsuUnauthorized):
        return (
            "Kitsu refused the access token even after refreshing it; "
            "link your Kitsu account again."
        )
    if isinstance(error, KitsuRateLimited):
        return "Kitsu is rate limiting requests; the sync will be tried again later."
    if isinstance(error, KitsuConnectionError | KitsuServerError | KitsuResponseError):
        return f"{error.message} The sync will be tried again later."
    return error.message


def describe_link_error(error: KitsuError, step: str) -> str:
    """What went wrong `step` (e.g. "exchanging the code") while linking an account."""
    if isinstance(error, KitsuInvalidClient):
        return (
            f"Kitsu does not know this site's OAuth client while {step}: the administrator "
            "should check KITSU_CLIENT_ID and KITSU_CLIENT_SECRET."
        )
    if isinstance(error, KitsuUnsupportedGrantType):
        return (
            f"This Kitsu server does not allow the authorization-code flow ({step}). "
            "The administrator should set KITSU_AUTH_FLOW=password."
        )
    if isinstance(error, KitsuInvalidGrant):
        return (
            f"Kitsu refused the approval while {step} (it was already used, expired, or "
            "belongs to another site). Start linking again."
        )
    if isinstance(error, KitsuUnauthorized):
        return f"Kitsu rejected the new access token while {step}. Start linking again."
    if isinstance(error, KitsuRateLimited):
        return f"Kitsu is limiting requests while {step}. Wait a minute, then try again."
    if isinstance(error, KitsuConnectionError):
        return f"Kitsu could not be reached while {step}. Try again in a few minutes."
    return f"Kitsu failed while {step} ({error.message}). Try again in a few minutes."
