"""Kitsu payloads shaped like docs/kitsu-api.md §7, as factories that return fresh dicts.

Links are built from `base` the way Kitsu builds them from the request host: keys sorted,
brackets percent-encoded. Reuse these wherever a test needs a realistic Kitsu body.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

API_URL = "https://kitsu.test/api/edge"
OAUTH_URL = "https://kitsu.test/api/oauth"

# docs/kitsu-api.md §7.4: a 43-character Doorkeeper 5 token pair.
ACCESS_TOKEN = "k0P3x9Qm1WcVbT2s6aYh8uLz4NdRfGjEiKoXpCqA7Ms"
REFRESH_TOKEN = "Zr5tYu7iOp9aSd1fGh3jKl5zXc7vBn9mQw2eRt4yUi6"
TOKEN_CREATED_AT = 1723440000
COWBOY_BEBOP_SYNOPSIS = (
    "In the year 2071, humanity has colonized several of the planets and moons..."
)
INVALID_GRANT_DESCRIPTION = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)


def kitsu_link(base: str, path: str, params: dict[str, Any] | None = None) -> str:
    query = urlencode(sorted((params or {}).items()))
    return f"{base}/{path}" + (f"?{query}" if query else "")


def relationship_links(base: str, path: str, name: str) -> dict[str, str]:
    return {
        "self": f"{base}/{path}/relationships/{name}",
        "related": f"{base}/{path}/{name}",
    }


def anime_resource(
    anime_id: str = "1", *, base: str = API_URL, **attributes: Any
) -> dict[str, Any]:
    """A compact anime resource, as in an `include=anime` list (the included anime of
    docs/kitsu-api.md §7.2)."""
    return {
        "id": anime_id,
        "type": "anime",
        "links": {"self": f"{base}/anime/{anime_id}"},
        "attributes": {
            "slug": f"anime-{anime_id}",
            "canonicalTitle": f"Anime {anime_id}",
            "episodeCount": 12,
            "subtype": "TV",
            "status": "finished",
            "averageRating": "75.10",
            **attributes,
        },
        "relationships": {},
    }


def cowboy_bebop_attributes() -> dict[str, Any]:
    """Anime 1's attributes in docs/kitsu-api.md §7.1."""
    return {
        "createdAt": "2013-02-20T16:00:13.609Z",
        "updatedAt": "2025-03-11T12:00:09.269Z",
        "slug": "cowboy-bebop",
        "synopsis": COWBOY_BEBOP_SYNOPSIS,
        "description": COWBOY_BEBOP_SYNOPSIS,
        "coverImageTopOffset": 400,
        "titles": {
            "en": "Cowboy Bebop",
            "en_jp": "Cowboy Bebop",
            "ja_jp": "カウボーイビバップ",
        },
        "canonicalTitle": "Cowboy Bebop",
        "abbreviatedTitles": ["COWBOY BEBOP"],
        "averageRating": "82.23",
        "ratingFrequencies": {
            "2": "4326",
            "3": "61",
            "4": "423",
            "10": "876",
            "14": "8951",
            "18": "11272",
            "20": "37582",
        },
        "userCount": 159386,
        "favoritesCount": 5118,
        "startDate": "1998-04-03",
        "endDate": "1999-04-24",
        "nextRelease": None,
        "popularityRank": 44,
        "ratingRank": 142,
        "ageRating": "R",
        "ageRatingGuide": "17+ (violence & profanity)",
        "subtype": "TV",
        "status": "finished",
        "tba": None,
        "posterImage": {
            "tiny": "https://media.kitsu.app/anime/poster_images/1/tiny.jpg",
            "large": "https://media.kitsu.app/anime/poster_images/1/large.jpg",
            "small": "https://media.kitsu.app/anime/poster_images/1/small.jpg",
            "medium": "https://media.kitsu.app/anime/poster_images/1/medium.jpg",
            "original": "https://media.kitsu.app/anime/poster_images/1/original.jpg",
            "meta": {
                "dimensions": {
                    "tiny": {"width": 110, "height": 156},
                    "large": {"width": 550, "height": 780},
                    "small": {"width": 284, "height": 402},
                    "medium": {"width": 390, "height": 554},
                }
            },
        },
        "coverImage": {
            "tiny": "https://media.kitsu.app/anime/1/cover_image/tiny-1f92cfe65c1b31d8b47e36f025d32b35.jpeg",
            "large": "https://media.kitsu.app/anime/1/cover_image/large-88da0208ac7fdd1a978de8b539008bd8.jpeg",
            "small": "https://media.kitsu.app/anime/1/cover_image/small-33ff2ab0f599bc15ed73856ecd13fe71.jpeg",
            "original": "https://media.kitsu.app/anime/1/cover_image/fb57e5f25616633a41f0f5f1ded938ee.jpeg",
            "meta": {
                "dimensions": {
                    "tiny": {"width": 840, "height": 200},
                    "large": {"width": 3360, "height": 800},
                    "small": {"width": 1680, "height": 400},
                }
            },
        },
        "episodeCount": 26,
        "episodeLength": 25,
        "totalLength": 626,
        "youtubeVideoId": "qig4KOK2R2g",
        "showType": "TV",
        "nsfw": False,
    }


def cowboy_bebop_document(*, base: str = API_URL) -> dict[str, Any]:
    """docs/kitsu-api.md §7.1: `GET /anime/1?include=genres`."""
    return {
        "data": {
            "id": "1",
            "type": "anime",
            "links": {"self": f"{base}/anime/1"},
            "attributes": cowboy_bebop_attributes(),
            "relationships": {
                "genres": {
                    "links": relationship_links(base, "anime/1", "genres"),
                    "data": [{"type": "genres", "id": "1"}, {"type": "genres", "id": "13"}],
                },
                "categories": {"links": relationship_links(base, "anime/1", "categories")},
                "mappings": {"links": relationship_links(base, "anime/1", "mappings")},
                "episodes": {"links": relationship_links(base, "anime/1", "episodes")},
            },
        },
        "included": [
            {
                "id": "1",
                "type": "genres",
                "links": {"self": f"{base}/genres/1"},
                "attributes": {
                    "createdAt": "2013-02-20T16:00:15.623Z",
                    "updatedAt": "2016-07-17T19:30:56.164Z",
                    "name": "Action",
                    "slug": "action",
                    "description": None,
                },
            },
            {
                "id": "13",
                "type": "genres",
                "links": {"self": f"{base}/genres/13"},
                "attributes": {
                    "createdAt": "2013-02-20T16:00:25.722Z",
                    "updatedAt": "2016-07-17T19:30:56.164Z",
                    "name": "Sci-Fi",
                    "slug": "sci-fi",
                    "description": None,
                },
            },
        ],
    }


def library_entry_attributes(**overrides: Any) -> dict[str, Any]:
    """The attributes of docs/kitsu-api.md §7.2's library entry, with `overrides`."""
    return {
        "createdAt": "2018-09-17T07:23:40.396Z",
        "updatedAt": "2018-09-28T08:16:08.529Z",
        "status": "current",
        "progress": 3,
        "volumesOwned": 0,
        "reconsuming": False,
        "reconsumeCount": 0,
        "notes": None,
        "private": False,
        "reactionSkipped": "unskipped",
        "progressedAt": "2018-09-28T08:16:08.528Z",
        "startedAt": "2018-09-28T08:15:32.510Z",
        "finishedAt": None,
        "rating": "0.0",
        "ratingTwenty": None,
        **overrides,
    }


def library_entry_resource(
    entry_id: str = "35128879",
    *,
    anime_id: str | None = "1",
    base: str = API_URL,
    **attributes: Any,
) -> dict[str, Any]:
    """The library entry of docs/kitsu-api.md §7.2; `anime_id=None` leaves the anime linkage
    out (not included)."""
    path = f"library-entries/{entry_id}"
    anime: dict[str, Any] = {"links": relationship_links(base, path, "anime")}
    if anime_id is not None:
        anime["data"] = {"type": "anime", "id": anime_id}
    return {
        "id": entry_id,
        "type": "libraryEntries",
        "links": {"self": f"{base}/{path}"},
        "attributes": library_entry_attributes(**attributes),
        "relationships": {
            "user": {"links": relationship_links(base, path, "user")},
            "anime": anime,
            "manga": {"links": relationship_links(base, path, "manga")},
            "media": {"links": relationship_links(base, path, "media")},
        },
    }


def library_entry_document(entry_id: str = "35128879", **attributes: Any) -> dict[str, Any]:
    """A single entry as returned by GET/POST/PATCH /library-entries/:id."""
    return {"data": library_entry_resource(entry_id, **attributes)}


def library_page(
    *,
    user_id: str = "373871",
    offset: int,
    limit: int,
    count: int,
    base: str = API_URL,
    first_entry_id: int = 35128879,
) -> dict[str, Any]:
    """One page of docs/kitsu-api.md §7.2 (`include=anime`) over a library of `count` entries.

    Entry n (0-based) has id `first_entry_id + n` and links anime `n + 1`. `next` is left
    out when offset + limit >= count, and `last` is not page-aligned, as in Kitsu.
    """
    numbers = range(offset, min(offset + limit, count))
    query = {"filter[kind]": "anime", "filter[user_id]": user_id, "include": "anime"}

    def page_link(page_offset: int) -> str:
        return kitsu_link(
            base,
            "library-entries",
            {**query, "page[limit]": limit, "page[offset]": page_offset},
        )

    links = {"first": page_link(0), "last": page_link(max(count - limit, 0))}
    if offset > 0:
        links["prev"] = page_link(max(offset - limit, 0))
    if offset + limit < count:
        links["next"] = page_link(offset + limit)
    return {
        "data": [
            library_entry_resource(str(first_entry_id + n), anime_id=str(n + 1), base=base)
            for n in numbers
        ],
        "included": [anime_resource(str(n + 1), base=base) for n in numbers],
        "meta": {"statusCounts": {"current": count}, "count": count},
        "links": links,
    }


def mapping_lookup_document(*, base: str = API_URL) -> dict[str, Any]:
    """docs/kitsu-api.md §7.3:
    `GET /mappings?filter[externalSite]=myanimelist/anime&filter[externalId]=21`."""
    query = {
        "filter[externalId]": "21",
        "filter[externalSite]": "myanimelist/anime",
        "include": "item",
        "page[limit]": 10,
        "page[offset]": 0,
    }
    return {
        "data": [
            {
                "id": "1175",
                "type": "mappings",
                "links": {"self": f"{base}/mappings/1175"},
                "attributes": {
                    "createdAt": "2017-07-27T22:21:26.824Z",
                    "updatedAt": "2017-07-27T22:47:45.129Z",
                    "externalSite": "myanimelist/anime",
                    "externalId": "21",
                },
                "relationships": {
                    "item": {
                        "links": relationship_links(base, "mappings/1175", "item"),
                        "data": {"type": "anime", "id": "12"},
                    }
                },
            }
        ],
        "included": [
            {
                "id": "12",
                "type": "anime",
                "links": {"self": f"{base}/anime/12"},
                "attributes": {
                    "slug": "one-piece",
                    "canonicalTitle": "One Piece",
                    "titles": {"en": "One Piece", "en_jp": "One Piece", "ja_jp": "ONE PIECE"},
                    "episodeCount": None,
                    "subtype": "TV",
                    "status": "current",
                },
            }
        ],
        "meta": {"count": 1},
        "links": {
            "first": kitsu_link(base, "mappings", query),
            "last": kitsu_link(base, "mappings", query),
        },
    }


def mapping_resource(
    mapping_id: str,
    external_site: Any,
    external_id: Any,
    *,
    base: str = API_URL,
    item_id: str | None = None,
) -> dict[str, Any]:
    """A mapping as listed by `GET /anime/:id/mappings` (item linkage not included); with
    `item_id`, its linkage to that anime too."""
    item: dict[str, Any] = {"links": relationship_links(base, f"mappings/{mapping_id}", "item")}
    if item_id is not None:
        item["data"] = {"type": "anime", "id": item_id}
    return {
        "id": mapping_id,
        "type": "mappings",
        "links": {"self": f"{base}/mappings/{mapping_id}"},
        "attributes": {
            "createdAt": "2017-07-27T22:21:26.824Z",
            "updatedAt": "2017-07-27T22:47:45.129Z",
            "externalSite": external_site,
            "externalId": external_id,
        },
        "relationships": {"item": item},
    }


def user_resource(
    user_id: str = "42603", *, base: str = API_URL, **attributes: Any
) -> dict[str, Any]:
    return {
        "id": user_id,
        "type": "users",
        "links": {"self": f"{base}/users/{user_id}"},
        "attributes": {
            "name": "Spike",
            "slug": "spike",
            "ratingSystem": "advanced",
            "createdAt": "2016-01-01T00:00:00.000Z",
            "updatedAt": "2024-01-01T00:00:00.000Z",
            **attributes,
        },
    }


# A user's avatar: a Shrine image object (docs/kitsu-api.md §3.4 and §3.1.1).
AVATAR = {
    "tiny": "https://media.kitsu.app/users/avatars/1/tiny.jpeg",
    "medium": "https://media.kitsu.app/users/avatars/1/medium.jpeg",
    "meta": {"dimensions": {}},
}


def demo_user_attributes(**overrides: Any) -> dict[str, Any]:
    """What Kitsu tells the demo user about themself, `about` and a counter included (`email`
    is sent to the user themself only: docs/kitsu-api.md §3.4)."""
    return {
        "slug": "demo",
        "name": "Demo Watcher",
        "email": "demo@example.test",
        "avatar": AVATAR,
        "about": "not kept",
        "followersCount": 3,
        **overrides,
    }


def token_body(**overrides: Any) -> dict[str, Any]:
    """docs/kitsu-api.md §7.4: a successful password grant."""
    return {
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": 2592000,
        "refresh_token": REFRESH_TOKEN,
        "scope": "public",
        "created_at": TOKEN_CREATED_AT,
        **overrides,
    }


def oauth_error_body(code: str, description: str | None = None) -> dict[str, str]:
    """Doorkeeper's ErrorResponse body (docs/kitsu-api.md §2)."""
    return {"error": code, "error_description": description or INVALID_GRANT_DESCRIPTION}


def oauth_error_headers(code: str) -> dict[str, str]:
    return {"WWW-Authenticate": f'Bearer realm="Kitsu", error="{code}", error_description="..."'}


# --- JSON:API error bodies, verbatim from docs/kitsu-api.md §2, §4 and §5 ----------------------

PAGE_LIMIT_ERROR = {
    "errors": [
        {
            "title": "Invalid page value",
            "detail": "Limit exceeds maximum page size of 20.",
            "code": "118",
            "status": "400",
        }
    ]
}
NO_FILTER_ERROR = {"errors": [{"status": 400, "detail": "No filter provided"}]}
INVALID_TOKEN_ERROR = {"errors": [{"title": "Invalid token", "status": "401"}]}
FORBIDDEN_ERROR = {
    "errors": [
        {
            "title": "Update Forbidden",
            "detail": "You don't have permission to update this library entry.",
            "code": "403",
            "status": "403",
        }
    ]
}
RECORD_NOT_FOUND_ERROR = {
    "errors": [
        {
            "title": "Record not found",
            "detail": "The record identified by 123 could not be found.",
            "code": "404",
            "status": "404",
        }
    ]
}
ROUTE_NOT_FOUND_ERROR = {"errors": [{"status": 404, "title": "Route Not Found"}]}
# JR's 406 (docs/kitsu-api.md quotes only the title).
NOT_ACCEPTABLE_ERROR = {"errors": [{"title": "Not acceptable", "code": "406", "status": "406"}]}
UNSUPPORTED_MEDIA_TYPE_ERROR = {
    "errors": [
        {
            "title": "Unsupported media type",
            "detail": "All requests that create or update must use the 'application/vnd.api+json' "
            "Content-Type. This request specified 'application/json'.",
            "code": "415",
            "status": "415",
        }
    ]
}
RATING_VALIDATION_ERROR = {
    "errors": [
        {
            "title": "must be greater than or equal to 2",
            "detail": "rating - must be greater than or equal to 2",
            "code": "100",
            "source": {"pointer": "/data/attributes/rating"},
            "status": "422",
        }
    ]
}
GRAPHQL_RATE_LIMIT_ERROR = {"errors": [{"status": 429, "title": "Rate Limit Exceeded"}]}
# Rack::Attack's throttled response: text/plain, no Retry-After.
RACK_ATTACK_BODY = "Retry later\n"
CLOUDFLARE_502_BODY = (
    "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"
)
