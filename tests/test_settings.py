from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from kitsu_sync.checks import check_kitsu_settings
from revenge_site.settings import parse_interval


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_it_parses_sync_intervals(value, expected):
    assert parse_interval(value) == expected


@pytest.mark.parametrize("value", ["", "24", "h", "1.5h", "0h", "-1h", "24 hours"])
def test_it_rejects_unclear_intervals(value):
    with pytest.raises(ImproperlyConfigured, match="interval"):
        parse_interval(value)


def test_check_passes_with_the_test_settings():
    assert check_kitsu_settings() == []


def test_check_reports_a_missing_token_key(settings):
    settings.KITSU_TOKEN_KEY = ""
    assert [e.id for e in check_kitsu_settings()] == ["kitsu_sync.E001"]


def test_check_requires_a_client_for_the_code_flow(settings):
    settings.KITSU_AUTH_FLOW = "authorization_code"
    settings.KITSU_CLIENT_ID = ""
    assert [e.id for e in check_kitsu_settings()] == ["kitsu_sync.E002"]


def test_check_rejects_a_url_without_scheme(settings):
    settings.KITSU_API_URL = "kitsu.app/api/edge"
    assert [e.id for e in check_kitsu_settings()] == ["kitsu_sync.E003"]
