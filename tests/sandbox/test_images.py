"""The sandbox's own image host: generated PNGs behind the poster, cover and avatar URLs.

With `media_url="/media"` (what `manage.py kitsu_sandbox` and `python -m kitsu_sync.sandbox`
use) the anime JSON points at the sandbox itself; the default keeps https://media.kitsu.app.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator

import pytest
import requests
from werkzeug.test import Client

from kitsu_sync.sandbox import SandboxConfig, create_app
from kitsu_sync.sandbox.images import ImageRequest, render
from kitsu_sync.sandbox.resources import COVER_SIZES, POSTER_SIZES
from tests.sandbox.test_server import ROOT, wait_for_line
from tests.sandbox_handle import SandboxHandle

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LARGEST_POSTER = max(((w, h) for _, w, h in POSTER_SIZES), key=lambda wh: wh[0] * wh[1])
LARGEST_COVER = max(((w, h) for _, w, h in COVER_SIZES), key=lambda wh: wh[0] * wh[1])


@pytest.fixture(scope="module")
def served() -> Iterator[SandboxHandle]:
    """A sandbox that serves its own images (read-only here, so shared by the module)."""
    with SandboxHandle.serving(SandboxConfig(users=1, entries=5, media_url="/media")) as handle:
        yield handle


def attributes(sandbox: SandboxHandle, anime_id: int) -> dict:
    response = requests.get(f"{sandbox.api_url}/anime/{anime_id}", timeout=10)
    assert response.status_code == 200
    return response.json()["data"]["attributes"]


def new_style_anime(sandbox: SandboxHandle) -> int:
    """An anime with poster and cover whose URLs are new style (not a landmark title)."""
    return next(
        a.id
        for a in sandbox.store.anime
        if a.landmark is None and a.poster_hash and a.cover_hash and not a.nsfw
    )


def png_size(body: bytes) -> tuple[int, int]:
    """Check `body` is a well-formed 8-bit RGB PNG (chunks, CRCs, pixel data); its size."""
    assert body[:8] == PNG_SIGNATURE
    chunks, offset = [], 8
    while offset < len(body):
        (length,) = struct.unpack(">I", body[offset : offset + 4])
        kind, data = body[offset + 4 : offset + 8], body[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", body[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + data) == crc
        chunks.append((kind, data))
        offset += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour_type, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour_type) == (8, 2)
    assert len(zlib.decompress(chunks[1][1])) == height * (1 + 3 * width)
    return width, height


def expected_sizes(image: dict) -> dict[str, tuple[int, int]]:
    dimensions = {
        size: (d["width"], d["height"]) for size, d in image["meta"]["dimensions"].items()
    }
    return {**dimensions, "original": max(dimensions.values(), key=lambda wh: wh[0] * wh[1])}


# --- where the JSON points -------------------------------------------------------------------


def test_anime_images_point_at_the_sandbox_when_media_url_is_a_path(served):
    media = f"{served.base_url}/media"
    old = attributes(served, 1)
    assert old["posterImage"]["large"] == f"{media}/anime/poster_images/1/large.jpg"
    assert old["coverImage"]["original"] == f"{media}/anime/cover_images/1/original.jpg"
    anime_id = new_style_anime(served)
    new = attributes(served, anime_id)
    digest = served.store.anime_by_id(anime_id).poster_hash
    assert new["posterImage"]["medium"] == (
        f"{media}/anime/{anime_id}/poster_image/medium-{digest}.jpeg"
    )
    for image in (old["posterImage"], old["coverImage"], new["posterImage"], new["coverImage"]):
        assert all(url.startswith(f"{media}/") for size, url in image.items() if size != "meta")
    config = requests.get(f"{served.base_url}/__sandbox/config", timeout=10).json()
    assert config["media_url"] == media


def test_the_default_config_keeps_kitsus_media_host(sandbox):
    kitsu = "https://media.kitsu.app"
    anime = attributes(sandbox, 1)
    assert anime["posterImage"]["large"] == f"{kitsu}/anime/poster_images/1/large.jpg"
    assert anime["coverImage"]["tiny"] == f"{kitsu}/anime/cover_images/1/tiny.jpg"
    me = requests.get(
        f"{sandbox.api_url}/users?filter[self]=true", headers=sandbox.auth_headers(1), timeout=10
    ).json()["data"][0]["attributes"]
    assert me["avatar"]["medium"].startswith(f"{kitsu}/users/avatars/")
    config = requests.get(f"{sandbox.base_url}/__sandbox/config", timeout=10).json()
    assert config["media_url"] == kitsu


def test_media_url_can_name_another_host():
    app = create_app(SandboxConfig(users=1, entries=1, media_url="https://cdn.example.test/"))
    body = Client(app).get("/api/edge/anime/1").get_json()
    assert body["data"]["attributes"]["posterImage"]["small"] == (
        "https://cdn.example.test/anime/poster_images/1/small.jpg"
    )


@pytest.mark.parametrize(
    "media_url", ["ftp://cdn.example.test", "media", "/api/media", "/__sandbox/x", "https://"]
)
def test_a_media_url_that_is_neither_a_path_nor_an_http_url_is_refused(media_url):
    with pytest.raises(ValueError, match="media_url"):
        SandboxConfig(media_url=media_url)


def test_the_demo_users_avatar_is_served_too(served):
    me = requests.get(
        f"{served.api_url}/users?filter[self]=true", headers=served.auth_headers(1), timeout=10
    ).json()["data"][0]["attributes"]
    avatar = me["avatar"]
    assert avatar["medium"].startswith(f"{served.base_url}/media/users/avatars/")
    response = requests.get(avatar["medium"], timeout=10)
    assert response.status_code == 200
    assert png_size(response.content) == (100, 100)


# --- the images ------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["old", "new"])
def test_every_advertised_size_is_a_png_of_its_advertised_dimensions(served, style):
    anime = attributes(served, 1 if style == "old" else new_style_anime(served))
    for name in ("posterImage", "coverImage"):
        image = anime[name]
        for size, (width, height) in expected_sizes(image).items():
            response = requests.get(image[size], timeout=10)
            assert response.status_code == 200, (name, size)
            assert response.headers["Content-Type"] == "image/png"
            assert response.headers["Cache-Control"] == "public, max-age=86400"
            assert png_size(response.content) == (width, height), (name, size)
    assert expected_sizes(anime["posterImage"])["original"] == LARGEST_POSTER
    assert expected_sizes(anime["coverImage"])["original"] == LARGEST_COVER


def test_the_same_url_gives_the_same_bytes_every_time(served, sandbox_factory):
    url = attributes(served, 1)["posterImage"]["large"]
    first = requests.get(url, timeout=10)
    render.cache_clear()
    second = requests.get(url, timeout=10)
    assert first.content == second.content
    assert first.headers["ETag"] == second.headers["ETag"]
    # Another seed, the same landmark URL: the picture depends on the anime id only.
    other = sandbox_factory(users=1, entries=5, seed=7, media_url="/media")
    again = requests.get(attributes(other, 1)["posterImage"]["large"], timeout=10)
    assert again.content == first.content


def test_different_anime_get_different_pictures(served):
    bodies = {
        requests.get(attributes(served, anime_id)["posterImage"]["large"], timeout=10).content
        for anime_id in (1, 5, new_style_anime(served))
    }
    assert len(bodies) == 3
    poster = requests.get(attributes(served, 1)["posterImage"]["large"], timeout=10)
    cover = requests.get(attributes(served, 1)["coverImage"]["large"], timeout=10)
    assert poster.content != cover.content


def test_a_matching_if_none_match_gets_304_without_a_body(served):
    url = attributes(served, 1)["posterImage"]["medium"]
    first = requests.get(url, timeout=10)
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    cached = requests.get(url, headers={"If-None-Match": etag}, timeout=10)
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["ETag"] == etag
    stale = requests.get(url, headers={"If-None-Match": '"something-else"'}, timeout=10)
    assert stale.status_code == 200
    assert stale.content == first.content


def test_head_answers_the_headers_without_the_body(served):
    url = attributes(served, 1)["posterImage"]["small"]
    response = requests.head(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert int(response.headers["Content-Length"]) == len(requests.get(url, timeout=10).content)
    assert response.content == b""


def test_unknown_ids_sizes_and_urls_are_404(served):
    media = f"{served.base_url}/media"
    anime_id = new_style_anime(served)
    digest = served.store.anime_by_id(anime_id).poster_hash
    bare = next(a.id for a in served.store.anime if a.poster_hash is None)
    missing = [
        f"{media}/anime/poster_images/99999/large.jpg",
        f"{media}/anime/poster_images/1/huge.jpg",
        f"{media}/anime/poster_images/1/large.png",
        f"{media}/anime/{anime_id}/poster_image/huge-{digest}.jpeg",
        f"{media}/anime/{anime_id}/poster_image/large-{'0' * 32}.jpeg",
        f"{media}/anime/poster_images/{anime_id}/large.jpg",  # old style for a new-style title
        f"{media}/anime/{bare}/poster_image/large-{digest}.jpeg",
        f"{media}/users/avatars/1002/large.jpeg",
        f"{media}/anime",
        f"{media}/nothing/here",
    ]
    for url in missing:
        assert requests.get(url, timeout=10).status_code == 404, url


def test_only_get_and_head_are_answered(served):
    url = attributes(served, 1)["posterImage"]["large"]
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = requests.request(method, url, timeout=10)
        assert response.status_code == 405, method
        assert response.headers["Allow"] == "GET, HEAD"


def test_image_requests_are_not_api_traffic(served):
    url = attributes(served, 1)["posterImage"]["large"]
    before = served.stats()["total"]
    requests.get(url, timeout=10)
    assert served.stats()["total"] == before


def test_a_poster_draws_well_under_50_ms():
    width, height = LARGEST_POSTER
    timings = []
    for anime_id in (101, 102, 103):
        started = time.perf_counter()
        render(ImageRequest("anime", anime_id, "poster", width, height))
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.05


# --- the demo path ---------------------------------------------------------------------------


def test_the_manage_py_command_serves_its_own_images():
    """`make run` runs this command: its posters must load with no network."""
    env = dict(os.environ, ENV_FILE=str(ROOT / "tests" / "test.env"))
    process = subprocess.Popen(
        [sys.executable, "manage.py", "kitsu_sandbox", "--port", "0", "--entries", "5"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        running = r"Kitsu sandbox running at (http://\S+)"
        base = wait_for_line(process, running, time.monotonic() + 60)[1]
        anime = requests.get(f"{base}/api/edge/anime/1", timeout=10).json()
        poster = anime["data"]["attributes"]["posterImage"]
        assert poster["large"] == f"{base}/media/anime/poster_images/1/large.jpg"
        response = requests.get(poster["large"], timeout=10)
        assert response.headers["Content-Type"] == "image/png"
        assert png_size(response.content) == (550, 780)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
