"""Seeded data: deterministic, any size, and full of the awkward cases real Kitsu serves."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from kitsu_sync.sandbox import SandboxConfig, seeded_credentials
from kitsu_sync.sandbox.records import LIBRARY_STATUSES, MAPPING_SITES, deprecated_rating
from kitsu_sync.sandbox.resources import DocumentBuilder
from kitsu_sync.sandbox.seed import generate
from kitsu_sync.sandbox.store import SandboxStore


def snapshot(config: SandboxConfig) -> list[tuple]:
    data = generate(config)
    anime = [
        (
            a.id,
            a.slug,
            tuple(a.titles.items()),
            a.average_rating,
            a.episode_count,
            a.status,
            a.start_day,
            a.age_rating,
            a.poster_hash,
            tuple((m.site, m.external_id) for m in a.mappings),
        )
        for a in data.anime
    ]
    entries = [
        (
            e.id,
            e.user_id,
            e.kind,
            e.media_id,
            e.status,
            e.progress,
            e.rating_twenty,
            e.private,
            e.notes,
            e.reconsuming,
            e.reconsume_count,
            e.created_at,
            e.updated_at,
            e.started_at,
        )
        for e in data.entries
    ]
    return anime + entries


def test_the_same_seed_gives_the_same_data():
    assert snapshot(SandboxConfig(seed=7)) == snapshot(SandboxConfig(seed=7))


def test_a_different_seed_gives_different_data():
    assert snapshot(SandboxConfig(seed=7)) != snapshot(SandboxConfig(seed=8))


def test_anime_do_not_depend_on_the_catalog_size():
    small = generate(SandboxConfig(catalog_size=200))
    large = generate(SandboxConfig(catalog_size=400))
    assert [a.titles for a in small.anime] == [a.titles for a in large.anime[:200]]


def test_the_demo_account_is_user_1001_with_a_display_name_unlike_its_slug():
    demo = seeded_credentials(SandboxConfig())[0]
    assert (demo.user_id, demo.slug, demo.name) == ("1001", "demo", "Demo Watcher")
    assert (demo.email, demo.password, demo.login) == (
        "demo@example.test",
        "demo-password",
        "demo@example.test",
    )


def test_user_two_has_a_password_that_breaks_naive_form_encoding():
    users = seeded_credentials(SandboxConfig(users=4))
    assert users[1].password == "p&ss=w0rd +%ü"
    assert (users[2].slug, users[2].name, users[2].email, users[2].password) == (
        "user3",
        "Sandbox User 3",
        "user3@example.test",
        "sandbox-password-3",
    )


@pytest.fixture(scope="module")
def data():
    return generate(SandboxConfig())


def test_catalog_has_titles_without_en_and_with_en_null(data):
    assert any("en" not in a.titles for a in data.anime)
    assert any("en" in a.titles and a.titles["en"] is None for a in data.anime)
    assert any(any(ord(c) > 0x3000 for c in a.titles["ja_jp"]) for a in data.anime)


def test_catalog_has_unrated_and_rated_titles(data):
    assert any(a.average_rating is None for a in data.anime)
    assert all(a.user_count < 250 for a in data.anime if a.average_rating is None)
    rated = [a.average_rating for a in data.anime if a.average_rating is not None]
    assert all(1000 <= r <= 10000 for r in rated)


def test_catalog_has_every_media_status_and_ongoing_titles(data):
    assert {a.status for a in data.anime} == {
        "current",
        "finished",
        "tba",
        "upcoming",
        "unreleased",
    }
    assert any(a.episode_count is None and a.status == "current" for a in data.anime)


def test_r18_titles_are_exactly_the_nsfw_ones(data):
    assert any(a.nsfw for a in data.anime)
    assert all(a.nsfw == (a.age_rating == "R18") for a in data.anime)


def test_mappings_range_from_none_to_several_sites(data):
    sites = Counter(m.external_site for a in data.anime for m in a.mappings)
    assert set(sites) == set(MAPPING_SITES)
    assert any(not a.mappings for a in data.anime)
    assert any(len(a.mappings) >= 3 for a in data.anime)


def test_some_titles_have_no_images(data):
    assert any(a.poster_hash is None and a.cover_hash is None for a in data.anime)
    assert any(a.cover_hash is None and a.poster_hash is not None for a in data.anime)


def test_demo_library_holds_every_awkward_case(data):
    library = [e for e in data.entries if e.user_id == 1001]
    anime = {a.id: a for a in data.anime}
    assert len(library) == 60
    assert {e.status for e in library} == set(LIBRARY_STATUSES)
    assert any(e.kind == "manga" for e in library)
    assert any(e.private for e in library)
    assert any(e.reconsuming and e.reconsume_count > 0 for e in library)
    assert any(e.rating_twenty is None for e in library)
    assert {2, 20} <= {e.rating_twenty for e in library}
    assert any(e.notes and not e.notes.isascii() for e in library)
    linked = [anime[e.media_id] for e in library if e.kind == "anime"]
    assert any(a.nsfw for a in linked)
    assert any(a.episode_count is None for a in linked)
    assert any(not a.mappings for a in linked)
    assert any("en" not in a.titles for a in linked)


def test_library_entries_are_consistent_with_their_media(data):
    anime = {a.id: a for a in data.anime}
    for entry in data.entries:
        assert entry.progress >= 0
        assert entry.rating_twenty is None or 2 <= entry.rating_twenty <= 20
        assert entry.created_at <= entry.updated_at
        if entry.kind == "anime":
            count = anime[entry.media_id].episode_count
            assert count is None or entry.progress <= count
            if entry.status == "completed" and count is not None:
                assert entry.progress == count
        if entry.status == "planned":
            assert entry.progress == 0
    pairs = [(e.user_id, e.kind, e.media_id) for e in data.entries]
    assert len(pairs) == len(set(pairs))


@pytest.mark.parametrize(
    ("rating_twenty", "rating"),
    [(None, "0.0"), (2, "0.5"), (3, "0.5"), (7, "1.5"), (16, "4.0"), (17, "4.0"), (20, "5.0")],
)
def test_deprecated_rating_is_floor_half_of_rating_twenty(rating_twenty, rating):
    assert deprecated_rating(rating_twenty) == rating


def test_fifty_thousand_entries_generate_and_serialise_quickly():
    started = time.perf_counter()
    store = SandboxStore(SandboxConfig(users=1, entries=50_000))
    generated = time.perf_counter() - started
    assert len(store.entries_by_user[1001]) == 50_000
    assert len(store.anime) == 100_000
    assert generated < 10

    page = store.entries_by_user[1001][:500]
    started = time.perf_counter()
    builder = DocumentBuilder(store, "http://sandbox.test/api/edge", store.users[0])
    builder.document(builder.resources(page, {"anime": {"mappings": {}}}))
    assert time.perf_counter() - started < 0.5


def test_a_thousand_users_with_two_hundred_entries_generate_quickly():
    started = time.perf_counter()
    data = generate(SandboxConfig(users=1000, entries=200))
    assert time.perf_counter() - started < 10
    assert len(data.entries) == 200_000
    assert len({e.id for e in data.entries}) == 200_000
