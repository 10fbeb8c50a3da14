from __future__ import annotations

from kitsu_sync.kitsu_client import get_kitsu_client, get_transport


def test_the_client_reads_as_many_pages_ahead_as_configured(settings):
    settings.KITSU_PAGES_IN_FLIGHT = 3
    assert get_kitsu_client().pages_in_flight == 3


def test_the_shared_limiter_uses_the_configured_key_and_rate(settings, fresh_transport):
    settings.KITSU_RATE_LIMIT_KEY = "revenge-second-instance"
    settings.KITSU_RATE_LIMIT = 4.0

    limiter = get_transport().rate_limiter

    assert limiter.key == "revenge-second-instance"
    assert limiter.rate_per_second == 4.0
