"""The sandbox's own image host: generated PNGs behind the posterImage, coverImage and avatar
URLs it advertises, so that pages showing them work offline.

An image is a small scene (a vertical gradient, a disc, a peak and, on posters, a title plate
of blank bars) whose colours and layout come from the record's kind and id alone: the same
URL always gives the same bytes, whatever the seed. Only URLs the sandbox advertises answer,
at the sizes their `meta.dimensions` give (original is the largest); anything else is 404.
Pure Python: zlib and struct write the PNG, and an LRU keeps what was drawn.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import math
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from kitsu_sync.sandbox.resources import (
    AVATAR_SIZES,
    COVER_SIZES,
    POSTER_SIZES,
    avatar_images,
    media_images,
)
from kitsu_sync.sandbox.store import SandboxStore

CACHE_CONTROL = "public, max-age=86400"
# Drawn images kept in memory (a 550x780 poster is about 15 kB of PNG, a 3360x800 cover 50).
IMAGE_CACHE_SIZE = 512

_MEDIA_PATHS = (
    # Old style (the landmark titles): /anime/poster_images/1/tiny.jpg
    re.compile(r"/(?P<kind>anime|manga)/(?P<which>poster|cover)_images/(?P<id>\d{1,9})/[^/]+"),
    # New style: /anime/7442/poster_image/tiny-<digest>.jpeg
    re.compile(r"/(?P<kind>anime|manga)/(?P<id>\d{1,9})/(?P<which>poster|cover)_image/[^/]+"),
)
_AVATAR_PATH = re.compile(r"/users/avatars/(?P<id>\d{1,9})/[^/]+")
_SIZES = {"poster": POSTER_SIZES, "cover": COVER_SIZES, "avatar": AVATAR_SIZES}

Colour = bytes  # three bytes: R, G, B


@dataclass(frozen=True)
class ImageRequest:
    """What an advertised image URL names: whose image, which one, and how big."""

    kind: str
    record_id: int
    which: str
    width: int
    height: int


def _dimensions(which: str, size: str) -> tuple[int, int]:
    sizes = {name: (w, h) for name, w, h in _SIZES[which]}
    if size == "original":
        return max(sizes.values(), key=lambda wh: wh[0] * wh[1])
    return sizes[size]


def _size_named(images: dict[str, Any] | None, path: str) -> str | None:
    """The size whose advertised URL is `path` (URLs built on an empty host), if any."""
    if images is None:
        return None
    return next((s for s, url in images.items() if s != "meta" and url == path), None)


def find_image(store: SandboxStore, path: str) -> ImageRequest | None:
    """The image behind `path` (below the media prefix), if the sandbox advertises that URL."""
    for pattern in _MEDIA_PATHS:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        kind, which, record_id = match["kind"], match["which"], int(match["id"])
        media = store.media(kind, record_id)
        if media is None:
            return None
        digest = media.poster_hash if which == "poster" else media.cover_hash
        old_style = media.landmark is not None
        size = _size_named(media_images("", kind, record_id, digest, which, old_style), path)
        if size is None:
            return None
        return ImageRequest(kind, record_id, which, *_dimensions(which, size))
    match = _AVATAR_PATH.fullmatch(path)
    user = None if match is None else store.user_by_id(int(match["id"]))
    size = None if user is None else _size_named(avatar_images("", user), path)
    if user is None or size is None:
        return None
    return ImageRequest("users", user.id, "avatar", *_dimensions("avatar", size))


# --- drawing ------------------------------------------------------------------------------------


def _colour(hue: float, saturation: float, value: float) -> Colour:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return bytes((round(red * 255), round(green * 255), round(blue * 255)))


def _mix(top: Colour, bottom: Colour, t: float) -> Colour:
    return bytes(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))


# A shape answers, for a row, the span [x0, x1) it covers there, or None.
Span = Callable[[int], tuple[int, int] | None]


def _disc(cx: float, cy: float, radius: float) -> Span:
    def span(y: int) -> tuple[int, int] | None:
        dy = y + 0.5 - cy
        if abs(dy) >= radius:
            return None
        dx = math.sqrt(radius * radius - dy * dy)
        return round(cx - dx), round(cx + dx)

    return span


def _peak(apex_x: float, apex_y: float, base_y: float, half_base: float) -> Span:
    def span(y: int) -> tuple[int, int] | None:
        if not apex_y <= y < base_y:
            return None
        half = half_base * (y - apex_y) / (base_y - apex_y)
        return round(apex_x - half), round(apex_x + half)

    return span


def _box(x0: float, y0: float, x1: float, y1: float) -> Span:
    def span(y: int) -> tuple[int, int] | None:
        return (round(x0), round(x1)) if y0 <= y < y1 else None

    return span


@dataclass(frozen=True)
class Scene:
    """A gradient background and shapes painted over it in order."""

    top: Colour
    bottom: Colour
    shapes: tuple[tuple[Span, Colour], ...]


def _scene(request: ImageRequest) -> Scene:
    """The picture for a record: colours and layout from a hash of its kind, id and image."""
    digest = hashlib.blake2b(
        f"{request.kind}:{request.record_id}:{request.which}".encode(), digest_size=16
    ).digest()
    unit = [b / 255 for b in digest]
    w, h = request.width, request.height
    hue = unit[0]
    short = min(w, h)
    shapes: list[tuple[Span, Colour]] = [
        (
            _disc(
                w * (0.2 + 0.6 * unit[1]),
                h * (0.15 + 0.3 * unit[2]),
                short * (0.14 + 0.16 * unit[3]),
            ),
            _colour(hue + 0.5, 0.55, 0.97),
        ),
        (
            _peak(
                w * (0.25 + 0.5 * unit[4]),
                h * (0.35 + 0.2 * unit[5]),
                h,
                w * (0.45 + 0.4 * unit[6]),
            ),
            _colour(hue + 0.08 + 0.1 * unit[7], 0.6, 0.45),
        ),
        (
            _peak(
                w * (0.1 + 0.8 * unit[8]),
                h * (0.55 + 0.15 * unit[9]),
                h,
                w * (0.3 + 0.3 * unit[10]),
            ),
            _colour(hue - 0.05, 0.7, 0.3),
        ),
    ]
    if request.which == "poster":
        plate, ink = _colour(hue, 0.35, 0.12), _colour(hue + 0.5, 0.1, 0.92)
        shapes += [
            (_box(0, h * 0.78, w, h * 0.95), plate),
            (_box(w * 0.08, h * 0.81, w * (0.5 + 0.4 * unit[11]), h * 0.855), ink),
            (_box(w * 0.08, h * 0.875, w * (0.3 + 0.3 * unit[12]), h * 0.905), ink),
        ]
    return Scene(_colour(hue, 0.45, 0.95), _colour(hue + 0.1, 0.75, 0.35), tuple(shapes))


def _pixels(scene: Scene, width: int, height: int) -> bytes:
    """Raw PNG scanlines (filter byte 0, then RGB) of `scene`."""
    rows = []
    for y in range(height):
        row = bytearray(_mix(scene.top, scene.bottom, y / max(height - 1, 1)) * width)
        for span, colour in scene.shapes:
            covered = span(y)
            if covered is None:
                continue
            x0, x1 = max(covered[0], 0), min(covered[1], width)
            if x1 > x0:
                row[x0 * 3 : x1 * 3] = colour * (x1 - x0)
        rows.append(b"\0")
        rows.append(bytes(row))
    return b"".join(rows)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(width: int, height: int, scanlines: bytes) -> bytes:
    """An 8-bit RGB PNG from its raw scanlines."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(scanlines, 3)),
            _chunk(b"IEND", b""),
        )
    )


@functools.lru_cache(maxsize=IMAGE_CACHE_SIZE)
def render(request: ImageRequest) -> tuple[bytes, str]:
    """The PNG for `request` and its ETag (drawn once, then served from the LRU)."""
    png = encode_png(
        request.width, request.height, _pixels(_scene(request), request.width, request.height)
    )
    return png, hashlib.blake2b(png, digest_size=12).hexdigest()


# --- serving ------------------------------------------------------------------------------------


class MediaFiles:
    """Answers GET and HEAD for image URLs under `prefix`, like a CDN: cacheable, with ETags."""

    def __init__(self, store: SandboxStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def handles(self, path: str) -> bool:
        return path.startswith(f"{self.prefix}/")

    def __call__(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            response = Response("Method Not Allowed\n", status=405, content_type="text/plain")
            response.headers["Allow"] = "GET, HEAD"
            return response
        found = find_image(self.store, request.path[len(self.prefix) :])
        if found is None:
            return Response("Not Found\n", status=404, content_type="text/plain")
        png, etag = render(found)
        response = Response(png, content_type="image/png")
        response.headers["Cache-Control"] = CACHE_CONTROL
        response.set_etag(etag)
        response = response.make_conditional(request)
        # make_conditional adds a Date header; the server writes its own.
        del response.headers["Date"]
        return response
