"""The process-wide Kitsu client, built from settings.

One transport per process: its HTTP session keeps connections alive, and its rate limiter is
shared with every other worker through Redis (or lives in this process in embedded mode).
"""

from __future__ import annotations

from functools import cache

from django.conf import settings

from kitsu_sync.kitsu_api import KitsuClient, RetryPolicy, Transport, make_rate_limiter


@cache
def get_transport() -> Transport:
    return Transport(
        api_url=settings.KITSU_API_URL,
        oauth_url=settings.KITSU_OAUTH_URL,
        timeout=(min(5.0, settings.KITSU_TIMEOUT), settings.KITSU_TIMEOUT),
        rate_limiter=make_rate_limiter(
            settings.KITSU_RATE_LIMIT, settings.REDIS_URL or None, key=settings.KITSU_RATE_LIMIT_KEY
        ),
    )


def get_kitsu_client() -> KitsuClient:
    return _client(get_transport(), settings.KITSU_PAGES_IN_FLIGHT)


@cache
def _client(transport: Transport, pages_in_flight: int) -> KitsuClient:
    # One client per transport: what it learns (that Kitsu refuses a sparse fieldset) lasts.
    return KitsuClient(transport, pages_in_flight=pages_in_flight)


def get_courtesy_transport() -> Transport:
    """For calls made while a person waits and whose failure changes nothing for them (telling
    Kitsu to revoke the tokens of an unlinked account): one attempt, short timeouts, the
    shared rate limit, never a retry's back-off sleep."""
    shared = get_transport()
    return Transport(
        api_url=shared.api_url,
        oauth_url=shared.oauth_url,
        session=shared.session,
        timeout=(3.0, 5.0),
        rate_limiter=shared.rate_limiter,
        rate_limit_wait=5.0,
        retry=RetryPolicy(attempts=1),
    )
