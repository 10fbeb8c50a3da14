"""What a failed Kitsu call during linking tells the person: the step, and what to do next."""

from __future__ import annotations

import pytest

from kitsu_sync.kitsu_api import (
    KitsuInvalidClient,
    KitsuInvalidGrant,
    KitsuRateLimited,
    KitsuServerError,
    KitsuTimeout,
    KitsuUnauthorized,
    KitsuUnsupportedGrantType,
)
from kitsu_sync.services.kitsu_errors import describe_link_error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (KitsuInvalidClient("x", code="invalid_client", status=401), "KITSU_CLIENT_ID"),
        (
            KitsuUnsupportedGrantType("x", code="unsupported_grant_type", status=400),
            "KITSU_AUTH_FLOW=password",
        ),
        (KitsuInvalidGrant("x", code="invalid_grant", status=400), "Start linking again"),
        (KitsuUnauthorized("Invalid token", status=401), "rejected the new access token"),
        (KitsuRateLimited("slow down", status=429), "Wait a minute"),
        (KitsuTimeout("no answer"), "could not be reached"),
        (KitsuServerError("Kitsu failed with HTTP 502.", status=502), "HTTP 502"),
    ],
)
def test_kitsu_errors_are_described_with_the_step_and_what_to_do(error, expected):
    text = describe_link_error(error, "reading your Kitsu profile")
    assert expected in text
    assert "reading your Kitsu profile" in text
