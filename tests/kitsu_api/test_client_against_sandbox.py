"""The client against the sandbox over real HTTP: shapes, pagination, writes, OAuth and the
sandbox's real error bodies mapped to the client's typed errors."""

from __future__ import annotations

import pytest

from kitsu_sync.kitsu_api import (
    KitsuBadRequest,
    KitsuClient,
    KitsuForbidden,
    KitsuInvalidGrant,
    KitsuNotFound,
    KitsuRateLimited,
    KitsuServerError,
    KitsuUnauthorized,
    KitsuUnsupportedMediaType,
    KitsuUsageError,
    KitsuValidationError,
    RetryPolicy,
    password_grant,
    refresh_grant,
)
from kitsu_sync.mapping import LIBRARY_FIELDSETS, anime_fields, library_entry_fields

NO_WAIT = RetryPolicy(attempts=3, backoff=0, jitter=0)


@pytest.fixture
def sandbox_transport(sandbox, make_transport):
    """A transport to the sandbox that retries without waiting."""
    return make_transport(
        api_url=sandbox.api_url, oauth_url=sandbox.oauth_url, retry=NO_WAIT, timeout=(2, 5)
    )


@pytest.fixture
def sandbox_client(sandbox_transport):
    return KitsuClient(sandbox_transport)


@pytest.fixture
def demo_login(sandbox, sandbox_transport):
    """The demo user's credentials and a fresh access token."""
    credentials = sandbox.credentials(1)
    token = password_grant(
        sandbox_transport, username=credentials.email, password=credentials.password
    )
    return credentials, token


def api_requests(sandbox, route: str) -> int:
    return sandbox.stats()["by_route"].get(route, 0)


def test_anime_comes_with_its_mappings(sandbox_client):
    anime = sandbox_client.anime(1)
    assert anime.attr("canonicalTitle") == "Cowboy Bebop"
    sites = {m.attr("externalSite") for m in anime.related_list("mappings")}
    assert {"myanimelist/anime", "anilist/anime"} <= sites


def test_search_season_trending_and_lookup(sandbox_client):
    assert sandbox_client.search_anime("bebop", limit=5)[0].id == "1"
    assert len(sandbox_client.trending_anime(limit=4)) == 4
    spring = list(sandbox_client.season_anime("spring", 1998, limit=30))
    assert all(a.attr("startDate") for a in spring)
    found = sandbox_client.lookup_external("myanimelist/anime", "1")
    assert found is not None
    assert found.id == "1"
    assert sandbox_client.lookup_external("myanimelist/anime", "987654321") is None


def test_library_pages_follow_next_links_to_the_last_page(sandbox_client, sandbox, demo_login):
    credentials, token = demo_login
    pages = list(
        sandbox_client.iter_library_pages(
            user_id=credentials.user_id, token=token.access_token, page_limit=25
        )
    )
    total = pages[0].meta["count"]
    assert sum(len(page.resources) for page in pages) == total
    assert len(pages) == -(-total // 25)
    assert api_requests(sandbox, "GET /api/edge/library-entries") == len(pages)
    ids = [entry.id for page in pages for entry in page.resources]
    assert len(ids) == len(set(ids))
    for page in pages:
        for entry in page.resources:
            assert entry.related("anime") is not None


def test_private_entries_show_only_to_their_owner(sandbox_client, demo_login):
    credentials, token = demo_login

    def private_count(access_token):
        return sum(
            entry.attr("private") is True
            for page in sandbox_client.iter_library_pages(
                user_id=credentials.user_id, token=access_token
            )
            for entry in page.resources
        )

    assert private_count(token.access_token) > 0
    assert private_count(None) == 0


def test_current_user_is_the_token_owner(sandbox_client, demo_login):
    credentials, token = demo_login
    user = sandbox_client.current_user(token=token.access_token)
    assert user.id == credentials.user_id
    assert user.attr("slug") == credentials.slug


def test_create_update_and_delete_an_entry(sandbox_client, demo_login):
    credentials, token = demo_login
    owned = {
        entry.related("anime").id
        for page in sandbox_client.iter_library_pages(
            user_id=credentials.user_id, token=token.access_token
        )
        for entry in page.resources
    }
    anime_id = next(
        str(i)
        for i in range(1, 500)
        if str(i) not in owned and sandbox_client.anime(i).attr("episodeCount")
    )
    created = sandbox_client.create_library_entry(
        token=token.access_token,
        user_id=credentials.user_id,
        anime_id=anime_id,
        attributes={"status": "planned"},
    )
    updated = sandbox_client.update_library_entry(
        token=token.access_token, entry_id=created.id, attributes={"progress": 1}
    )
    # Kitsu's side effect: progress on a planned entry makes it current.
    assert updated.attr("status") == "current"
    assert updated.attr("progress") == 1
    sandbox_client.delete_library_entry(token=token.access_token, entry_id=created.id)
    with pytest.raises(KitsuNotFound):
        sandbox_client.library_entry(created.id, token=token.access_token)


def test_a_rating_outside_2_to_20_is_a_validation_error_with_its_pointer(
    sandbox_client, demo_login
):
    credentials, token = demo_login
    entry = next(
        sandbox_client.iter_library_pages(user_id=credentials.user_id, token=token.access_token)
    ).resources[0]
    with pytest.raises(KitsuValidationError) as info:
        sandbox_client.update_library_entry(
            token=token.access_token, entry_id=entry.id, attributes={"ratingTwenty": 25}
        )
    assert info.value.status == 422
    assert info.value.errors[0]["source"]["pointer"] == "/data/attributes/rating"


def test_writing_another_users_entry_is_forbidden(
    sandbox_client, sandbox, sandbox_transport, demo_login
):
    _, token = demo_login
    other = sandbox.credentials(3)
    other_entry = next(sandbox_client.iter_library_pages(user_id=other.user_id)).resources[0]
    with pytest.raises(KitsuForbidden, match="permission"):
        sandbox_client.update_library_entry(
            token=token.access_token, entry_id=other_entry.id, attributes={"progress": 1}
        )


def test_a_page_over_the_limit_is_a_bad_request(sandbox_transport):
    with pytest.raises(KitsuBadRequest, match="maximum page size of 20"):
        sandbox_transport.request("GET", "anime", params={"page[limit]": "21"})


def test_a_write_without_the_json_api_content_type_is_415(sandbox_transport, demo_login):
    _, token = demo_login
    with pytest.raises(KitsuUnsupportedMediaType, match=r"application/vnd\.api\+json"):
        sandbox_transport.request(
            "POST", "library-entries", token=token.access_token, form={"status": "current"}
        )


def test_a_revoked_token_is_unauthorized(sandbox_client, sandbox, demo_login):
    credentials, token = demo_login
    sandbox.revoke_tokens(credentials.user_id)
    with pytest.raises(KitsuUnauthorized, match="Invalid token"):
        sandbox_client.current_user(token=token.access_token)


def test_unknown_anime_and_unknown_routes_are_not_found(sandbox_client, sandbox_transport):
    with pytest.raises(KitsuNotFound):
        sandbox_client.anime(99999999)
    with pytest.raises(KitsuNotFound, match="Route Not Found"):
        sandbox_transport.request("GET", "no-such-resource")


def test_password_grant_accepts_the_slug_and_special_characters(sandbox_transport, sandbox):
    demo = sandbox.credentials(1)
    assert password_grant(
        sandbox_transport, username=demo.slug, password=demo.password
    ).access_token
    special = sandbox.credentials(2)
    assert "&" in special.password
    assert password_grant(sandbox_transport, username=special.email, password=special.password)


def test_the_display_name_is_not_a_login(sandbox_transport, sandbox):
    demo = sandbox.credentials(1)
    with pytest.raises(KitsuInvalidGrant):
        password_grant(sandbox_transport, username=demo.name, password=demo.password)


def test_refresh_tokens_are_single_use(sandbox_transport, demo_login):
    _, token = demo_login
    renewed = refresh_grant(sandbox_transport, refresh_token=token.refresh_token)
    assert renewed.access_token != token.access_token
    with pytest.raises(KitsuInvalidGrant):
        refresh_grant(sandbox_transport, refresh_token=token.refresh_token)


def test_the_login_throttle_is_not_retried(sandbox_transport, sandbox):
    demo = sandbox.credentials(1)
    for _ in range(15):
        password_grant(sandbox_transport, username=demo.email, password=demo.password)
    sent = sandbox_transport.requests_made
    with pytest.raises(KitsuRateLimited):
        password_grant(sandbox_transport, username=demo.email, password=demo.password)
    assert sandbox_transport.requests_made == sent + 1


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 503, "count": 2},
        {"kind": "rate_limit", "count": 2},
        {"kind": "truncate", "count": 2},
        {"kind": "html", "count": 2},
        {"kind": "drop", "count": 2},
    ],
)
def test_transient_faults_on_reads_are_retried_then_succeed(sandbox_client, sandbox, fault):
    sandbox.set_faults([{**fault, "path": "/api/edge/anime"}])
    assert sandbox_client.anime(1).id == "1"
    assert sandbox.stats()["by_route"]["GET /api/edge/anime/:id"] == 3


def test_a_fault_that_outlasts_the_retries_surfaces_typed(
    sandbox_client, sandbox, sandbox_transport
):
    sandbox.set_faults([{"kind": "status", "status": 502, "count": 10, "path": "/api/edge/"}])
    with pytest.raises(KitsuServerError) as info:
        sandbox_client.anime(1)
    assert info.value.retryable is True
    assert sandbox_transport.requests_made == NO_WAIT.attempts


def mapped_library(pages) -> tuple[list[dict], dict[int, dict]]:
    entries, anime = [], {}
    for page in pages:
        for resource in page.resources:
            entries.append(library_entry_fields(resource))
            included = resource.related("anime")
            if included is not None:
                anime[int(included.id)] = anime_fields(included)
    return entries, anime


def test_the_sync_s_sparse_fieldsets_lose_nothing_the_mapping_reads(sandbox_client, demo_login):
    credentials, token = demo_login
    listing = {"user_id": credentials.user_id, "token": token.access_token, "sort": "updatedAt"}

    full = mapped_library(sandbox_client.iter_library_pages(**listing))
    sparse_pages = list(sandbox_client.iter_library_pages(**listing, fields=LIBRARY_FIELDSETS))

    assert full[0], "the demo library has entries"
    assert mapped_library(sparse_pages) == full
    assert any(anime["mal_id"] is not None for anime in full[1].values()), "ids were compared"
    # What the fieldsets leave out: every relationship's links but the ones the mapping reads.
    entry = sparse_pages[0].resources[0]
    assert set(entry.relationships) == {"anime"}
    assert set(entry.related("anime").relationships) == {"mappings"}


def test_a_sparse_fieldset_needs_a_type_and_a_field(sandbox_client):
    with pytest.raises(KitsuUsageError, match="sparse fieldset"):
        next(sandbox_client.iter_library_pages(user_id=1, fields={"anime": []}))
