from __future__ import annotations

from tests.link_fixtures import (  # noqa: F401 (fixtures shared by the linking tests)
    code_flow,
    kitsu_at,
    kitsu_settings,
    make_user,
    sync_requests,
)
