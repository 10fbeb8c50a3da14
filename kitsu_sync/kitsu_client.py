"""The process-wide Kitsu client, built from settings.

One transport per process: its HTTP session keeps connections alive, and its rate limiter is
shared with every other worker through Redis (or lives in this process in embedded mode).
"""

from __future__ import annotations

from functools import cache

from django.conf import settings

from kitsu_sync.kitsu_api import KitsuClient, RetryPolicy, Transport
from kitsu_sync.metrics import MeteredRateLimiter, MeteredSession


@cache
def get_transport() -> Transport:
    # The session and the limiter count every attempt, retry and wait (kitsu_sync.metrics).
    session = MeteredSession(api_url=settings.KITSU_API_URL, oauth_url=settings.KITSU_OAUTH_URL)
    return Transport(
        api_url=settings.KITSU_API_URL,
        oauth_url=settings.KITSU_OAUTH_URL,
        session=session,
        timeout=(min(5.0, settings.KITSU_TIMEOUT), settings.KITSU_TIMEOUT),
        # One limiter shared by all workers through Redis, or by this process without it.
        rate_limiter=MeteredRateLimiter(
            settings.KITSU_RATE_LIMIT,
            storage_uri=settings.REDIS_URL or "memory://",
            key=settings.KITSU_RATE_LIMIT_KEY,
        ),
        on_retry=session.count_retry,
        deadline=settings.KITSU_HTTP_DEADLINE,
        max_response_bytes=settings.KITSU_MAX_RESPONSE_BYTES,
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
        deadline=min(10.0, shared.deadline),
        max_response_bytes=shared.max_response_bytes,
    )
