"""Kitsu's resources as methods: each builds one request and returns JSON:API resources.

No mapping to Revenge fields happens here; callers read `Resource.attr` / `Resource.related`.
Requests that need a user's access token take a `str`, or a `BearerToken` that can be replaced
once after Kitsu refuses it (401): that refresh-and-retry happens here, in `_authorised`, for
single requests and for every page of a listing alike.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

from kitsu_sync.kitsu_api.errors import (
    KitsuFieldsRefused,
    KitsuResponseError,
    KitsuUnauthorized,
    KitsuUsageError,
)
from kitsu_sync.kitsu_api.jsonapi import Document, Resource, parse_document
from kitsu_sync.kitsu_api.transport import Transport

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Kitsu's offset paginator caps page[limit] at 20, except LibraryPaginator at 500
# (docs/kitsu-api.md §4.3).
MAX_PAGE_LIMIT = 20
MAX_LIBRARY_PAGE_LIMIT = 500
SEASONS = ("winter", "spring", "summer", "fall")
LIBRARY_KINDS = ("anime", "manga")
LIBRARY_STATUSES = ("current", "planned", "completed", "on_hold", "dropped")
# requests keeps 10 connections per host: more requests at once would open throwaway ones.
MAX_PAGES_IN_FLIGHT = 10


def _kitsu_id(value: int | str, what: str) -> str:
    """A numeric Kitsu id as the string Kitsu uses; anything else would hit another route."""
    text = str(value)
    if isinstance(value, bool) or not text.isascii() or not text.isdigit():
        raise KitsuUsageError(f"{what} must be a numeric Kitsu id, not {value!r}.")
    return text


def _page_limit(value: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise KitsuUsageError(f"The page limit must be between 1 and {maximum}, not {value!r}.")
    return value


class BearerToken:
    """A user's access token, which `refresh` replaces once Kitsu refuses it.

    `refresh(rejected)` returns the token to use instead (the caller's token store refreshes
    it, or hands out the one another process already got). Kitsu answers 401 to an expired or
    revoked token (docs/kitsu-api.md §2).
    """

    def __init__(self, value: str, *, refresh: Callable[[str], str] | None = None) -> None:
        self._value = value
        self._refresh = refresh
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "BearerToken(<hidden>)"

    @property
    def value(self) -> str:
        return self._value

    def replacement(self, rejected: str) -> str | None:
        """The token to use instead of `rejected`, or None when there is none."""
        with self._lock:
            if rejected == self._value:
                if self._refresh is None:
                    return None
                self._value = self._refresh(rejected)
            return self._value if self._value != rejected else None


Token = str | BearerToken


def _token_value(token: Token | None) -> str | None:
    return token.value if isinstance(token, BearerToken) else token


def _require_token(token: Token | None) -> Token:
    if not _token_value(token):
        raise KitsuUsageError("This Kitsu request needs an access token.")
    assert token is not None
    return token


def _replacement(token: Token | None, rejected: str | None, refused: KitsuUnauthorized) -> str:
    """The token to try once more with after a 401, or `refused` raised again."""
    fresh = token.replacement(rejected or "") if isinstance(token, BearerToken) else None
    if fresh is None:
        raise refused
    return fresh


def _authorised(token: Token | None, request: Callable[[str | None], T]) -> T:
    """`request(token)`, and once more with a fresh token when Kitsu answers 401."""
    value = _token_value(token)
    try:
        return request(value)
    except KitsuUnauthorized as exc:
        return request(_replacement(token, value, exc))


def format_since(moment: datetime) -> str:
    """`filter[since]` value: ISO 8601 in UTC with milliseconds, as Kitsu writes timestamps."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise KitsuUsageError("`since` must be timezone-aware; a naive time is ambiguous.")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _include(include: Iterable[str]) -> dict[str, str]:
    names = ",".join(include)
    return {"include": names} if names else {}


def _fieldsets(fields: Mapping[str, Sequence[str]] | None) -> dict[str, str]:
    """`fields[type]=a,b` parameters (sparse fieldsets) from type -> names."""
    params: dict[str, str] = {}
    for type_name, names in (fields or {}).items():
        listed = [names] if isinstance(names, str) else list(names)
        if not type_name or not listed or not all(isinstance(n, str) and n for n in listed):
            raise KitsuUsageError(
                f"A sparse fieldset names a type and at least one field, not {type_name!r}: "
                f"{names!r}."
            )
        params[f"fields[{type_name}]"] = ",".join(listed)
    return params


def _pages_in_flight(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise KitsuUsageError(f"pages_in_flight must be a whole number, not {value!r}.")
    if not 1 <= value <= MAX_PAGES_IN_FLIGHT:
        raise KitsuUsageError(
            f"pages_in_flight must be between 1 and {MAX_PAGES_IN_FLIGHT}, not {value!r}."
        )
    return value


def _link_key(url: str) -> tuple[str, str, str, list[tuple[str, str]]]:
    """A link as a page: the same whatever the order and escaping of its query."""
    parts = urlsplit(url)
    query = sorted(parse_qsl(parts.query, keep_blank_values=True))
    return parts.scheme.lower(), parts.netloc.lower(), parts.path, query


def _offset_and_limit(url: str) -> tuple[int, int] | None:
    """page[offset] and page[limit] of an offset-paginated link (docs/kitsu-api.md
    §4.3), else None."""
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    offsets, limits = query.get("page[offset]", []), query.get("page[limit]", [])
    if len(offsets) != 1 or len(limits) != 1:
        return None
    offset, limit = offsets[0], limits[0]
    if not (offset.isascii() and offset.isdigit() and limit.isascii() and limit.isdigit()):
        return None
    return (int(offset), int(limit)) if int(limit) > 0 else None


def _with_offset(url: str, offset: int) -> str:
    parts = urlsplit(url)
    query = [
        (name, str(offset) if name == "page[offset]" else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _guess_next_pages(
    ahead: deque[tuple[str, Future[Document]]],
    count: Any,
    wanted: int,
    fetch: Callable[[str], Future[Document]],
) -> None:
    """Ask for the pages after the last one in `ahead`, by stepping its offset, up to `count`.

    Kitsu's offset paginator (docs/kitsu-api.md §4.3) gives the next page as the same query
    with page[offset] moved on by page[limit], and leaves links.next out once offset + limit
    >= meta.count.
    """
    if isinstance(count, bool) or not isinstance(count, int):
        return
    while ahead and len(ahead) < wanted:
        last_url = ahead[-1][0]
        step = _offset_and_limit(last_url)
        if step is None or step[0] + step[1] >= count:
            return
        url = _with_offset(last_url, step[0] + step[1])
        ahead.append((url, fetch(url)))


def _forget(ahead: deque[tuple[str, Future[Document]]]) -> None:
    """Drop guessed pages: those not started never will be; answers in progress are ignored."""
    for _, future in ahead:
        future.cancel()
    ahead.clear()


_LOOP_MESSAGE = "Kitsu's pagination points back to a page already read; stopping."


class KitsuClient:
    """Kitsu's resources as methods.

    `pages_in_flight` is how many page requests of a listing may run at once, in threads,
    ahead of the caller; 1 asks for each page only when the caller wants it.
    """

    def __init__(self, transport: Transport, *, pages_in_flight: int = 1) -> None:
        self.transport = transport
        self.pages_in_flight = _pages_in_flight(pages_in_flight)
        # Set once Kitsu refuses a sparse fieldset: library listings then ask for whole pages.
        self.whole_library_pages = False

    def __repr__(self) -> str:
        return f"KitsuClient({self.transport!r})"

    # --- documents and pagination -----------------------------------------------------------

    def get_document(
        self, path: str, *, params: Mapping[str, Any] | None = None, token: str | None = None
    ) -> Document:
        response = self.transport.request("GET", path, token=token, params=params)
        return parse_document(response.body)

    def iter_documents(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        token: Token | None = None,
        pages_in_flight: int | None = None,
    ) -> Iterator[Document]:
        """Every page of a collection, following links.next until Kitsu leaves it out.

        With `pages_in_flight` n > 1 (None: the client's default), up to n page requests run
        in threads while the caller works on a page. Pages still come in order, and they are
        exactly the pages links.next leads to; a page's error is raised when its turn comes,
        after the pages before it. Closing the iterator early cancels what has not started
        and waits for the requests in progress. A page refused with 401 is asked for once more
        with `token`'s replacement, in the caller's thread.
        """
        in_flight = (
            self.pages_in_flight if pages_in_flight is None else _pages_in_flight(pages_in_flight)
        )
        if in_flight == 1:
            return self._documents_in_turn(path, params=params, token=token)
        return self._documents_ahead(path, params=params, token=token, in_flight=in_flight)

    def _page(self, url: str, params: Mapping[str, Any] | None, token: Token | None) -> Document:
        return _authorised(token, lambda value: self.get_document(url, params=params, token=value))

    def _documents_in_turn(
        self, path: str, *, params: Mapping[str, Any] | None, token: Token | None
    ) -> Iterator[Document]:
        seen: set[str] = set()
        document = self._page(path, params, token)
        while True:
            yield document
            next_url = document.next_url
            if next_url is None:
                return
            if next_url in seen:
                raise KitsuResponseError(_LOOP_MESSAGE)
            seen.add(next_url)
            document = self._page(next_url, None, token)

    def _documents_ahead(
        self, path: str, *, params: Mapping[str, Any] | None, token: Token | None, in_flight: int
    ) -> Iterator[Document]:
        """Pages fetched ahead: the real next link, then guesses that each page checks."""
        seen: set[str] = set()
        # (url, its future), for the pages after the one the caller holds, in order.
        ahead: deque[tuple[str, Future[Document]]] = deque()
        pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="kitsu-page")

        def fetch(url: str) -> Future[Document]:
            # The token as it is now: a page refused with it is asked for again in turn. The
            # caller's context variables go along (its log lines' user and sync run ids).
            return pool.submit(
                contextvars.copy_context().run, self.get_document, url, token=_token_value(token)
            )

        def arrived(url: str, future: Future[Document]) -> Document:
            sent_with = _token_value(token)  # refreshed only in this thread, so still the same
            try:
                return future.result()
            except KitsuUnauthorized as exc:
                _forget(ahead)  # sent with the same refused token
                return self.get_document(url, token=_replacement(token, sent_with, exc))

        try:
            document = self._page(path, params, token)
            while True:
                next_url = document.next_url
                if next_url is None or next_url in seen:
                    _forget(ahead)
                    yield document
                    if next_url is None:
                        return
                    raise KitsuResponseError(_LOOP_MESSAGE)
                seen.add(next_url)
                if not ahead or _link_key(ahead[0][0]) != _link_key(next_url):
                    # Not the page guessed (the library changed size, or another paginator):
                    # Kitsu's own link wins.
                    _forget(ahead)
                    ahead.append((next_url, fetch(next_url)))
                _guess_next_pages(ahead, document.meta.get("count"), in_flight, fetch)
                yield document
                document = arrived(*ahead.popleft())
        finally:
            _forget(ahead)
            pool.shutdown(wait=True, cancel_futures=True)

    def _iter_resources(
        self,
        path: str,
        *,
        params: Mapping[str, Any],
        token: Token | None = None,
        pages_in_flight: int | None = None,
    ) -> Iterator[Resource]:
        pages = self.iter_documents(
            path, params=params, token=token, pages_in_flight=pages_in_flight
        )
        for document in pages:
            yield from self._collection(document)

    def _one(self, path: str, *, params: Mapping[str, Any], token: Token | None) -> Resource:
        document = self._page(path, params, token)
        if not isinstance(document.data, Resource):
            raise KitsuResponseError(f"Kitsu returned no single resource for {path}.")
        return document.data

    @staticmethod
    def _collection(document: Document) -> list[Resource]:
        if not isinstance(document.data, list):
            raise KitsuResponseError("Kitsu returned a single resource where a list was expected.")
        return document.data

    # --- anime metadata ---------------------------------------------------------------------

    def anime(self, kitsu_id: int | str, *, include: Sequence[str] = ("mappings",)) -> Resource:
        return self._one(
            f"anime/{_kitsu_id(kitsu_id, 'The anime id')}", params=_include(include), token=None
        )

    def search_anime(self, text: str, *, limit: int = MAX_PAGE_LIMIT) -> list[Resource]:
        if not text.strip():
            raise KitsuUsageError("Type something to search for.")
        params = {"filter[text]": text.strip(), "page[limit]": _page_limit(limit, MAX_PAGE_LIMIT)}
        return self._collection(self.get_document("anime", params=params))

    def season_anime(
        self, season: str, year: int, *, limit: int | None = None
    ) -> Iterator[Resource]:
        """Anime of one season; Kitsu counts December as winter of the next year.

        Arguments are checked at once (not at the first `next`); pages load lazily.
        """
        name = season.strip().lower()
        if name not in SEASONS:
            raise KitsuUsageError(f"Unknown season {season!r}: use one of {', '.join(SEASONS)}.")
        if isinstance(year, bool) or not isinstance(year, int) or year < 1900:
            raise KitsuUsageError(f"The season year must be a year such as 2024, not {year!r}.")
        if limit is not None and limit < 1:
            raise KitsuUsageError(f"The limit must be at least 1, not {limit!r}.")
        params = {
            "filter[season]": name,
            "filter[seasonYear]": year,
            "page[limit]": MAX_PAGE_LIMIT,
        }
        if limit is None:
            return self._iter_resources("anime", params=params)
        # One page at a time: islice stops before asking for a page that would be thrown away.
        return islice(self._iter_resources("anime", params=params, pages_in_flight=1), limit)

    def trending_anime(self, *, limit: int = 10) -> list[Resource]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise KitsuUsageError(f"The limit must be at least 1, not {limit!r}.")
        # Trending takes `limit`, not page[limit], and answers only {"data": [...]}.
        return self._collection(self.get_document("trending/anime", params={"limit": limit}))

    def anime_mappings(self, kitsu_id: int | str) -> list[Resource]:
        path = f"anime/{_kitsu_id(kitsu_id, 'The anime id')}/mappings"
        return list(self._iter_resources(path, params={"page[limit]": MAX_PAGE_LIMIT}))

    def lookup_external(self, external_site: str, external_id: int | str) -> Resource | None:
        """The Kitsu anime mapped to an id on another site (e.g. myanimelist/anime 21)."""
        found = self.mapped_anime(external_site, external_id)
        return found[0] if found else None

    def mapped_anime(self, external_site: str, external_id: int | str) -> list[Resource]:
        """Every Kitsu anime mapped to an id on another site (a TheTVDB series may map to
        each of its seasons' anime), in Kitsu's order (docs/kitsu-api.md §3.3)."""
        if not external_site or not str(external_id):
            raise KitsuUsageError("Both the external site and the external id are needed.")
        params = {
            "filter[externalSite]": external_site,
            "filter[externalId]": str(external_id),
            "include": "item",
            "page[limit]": MAX_PAGE_LIMIT,
        }
        found: dict[str, Resource] = {}
        for mapping in self._collection(self.get_document("mappings", params=params)):
            item = mapping.related("item")
            # `item` is polymorphic: the same site id can also map to manga or people.
            if isinstance(item, Resource) and item.type == "anime":
                found.setdefault(item.id, item)
        return list(found.values())

    # --- users and library ------------------------------------------------------------------

    def current_user(self, *, token: Token) -> Resource | None:
        """The token's owner; Kitsu answers an empty array, not 401, for an anonymous caller."""
        document = self._page("users", {"filter[self]": "true"}, _require_token(token))
        users = self._collection(document)
        return users[0] if users else None

    def iter_library_pages(
        self,
        *,
        user_id: int | str,
        token: Token | None = None,
        kind: str = "anime",
        since: datetime | None = None,
        include: Sequence[str] = ("anime", "anime.mappings"),
        page_limit: int = MAX_LIBRARY_PAGE_LIMIT,
        status: str | Sequence[str] | None = None,
        sort: str | Sequence[str] | None = None,
        ids: Iterable[int | str] | None = None,
        fields: Mapping[str, Sequence[str]] | None = None,
        pages_in_flight: int | None = None,
    ) -> Iterator[Document]:
        """A user's library entries page by page; `Document.meta["count"]` is the total.

        `sort` takes JSON:API sort fields (`updatedAt`, `-progressedAt`, ...); Kitsu's default
        order is by id. `ids` keeps only the entries with these ids. `fields` maps a resource
        type to the attributes and relationships Kitsu should send (sparse fieldsets; a
        relationship named in `include` must be listed too). Should Kitsu refuse a field of
        them (400 "Invalid field"), the listing starts again with whole pages, and so do this
        client's later listings. `pages_in_flight`: see `iter_documents`.
        """
        if kind not in LIBRARY_KINDS:
            raise KitsuUsageError(f"Unknown library kind {kind!r}: use anime or manga.")
        # A filter is always present: Kitsu answers 400 "No filter provided" otherwise.
        params: dict[str, Any] = {
            "filter[userId]": _kitsu_id(user_id, "The user id"),
            "filter[kind]": kind,
            "page[limit]": _page_limit(page_limit, MAX_LIBRARY_PAGE_LIMIT),
            **_include(include),
        }
        if since is not None:
            params["filter[since]"] = format_since(since)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            unknown = [value for value in statuses if value not in LIBRARY_STATUSES]
            if unknown or not statuses:
                raise KitsuUsageError(
                    f"Unknown library status {unknown or statuses!r}: use "
                    f"{', '.join(LIBRARY_STATUSES)} (snake_case, as Kitsu stores them)."
                )
            params["filter[status]"] = ",".join(statuses)
        if ids is not None:
            wanted = [_kitsu_id(entry_id, "A library entry id") for entry_id in ids]
            if not wanted:
                raise KitsuUsageError("Give at least one library entry id, or none at all.")
            params["filter[id]"] = ",".join(wanted)
        if sort is not None:
            sort_fields = [sort] if isinstance(sort, str) else list(sort)
            if not sort_fields or not all(isinstance(name, str) and name for name in sort_fields):
                raise KitsuUsageError(f"Sort fields must be non-empty names, not {sort!r}.")
            params["sort"] = ",".join(sort_fields)
        fieldsets = _fieldsets(fields)
        if pages_in_flight is not None:
            _pages_in_flight(pages_in_flight)  # checked now, not at the first page
        return self._library_listing(params, fieldsets, token, pages_in_flight)

    def _library_listing(
        self,
        params: dict[str, Any],
        fieldsets: dict[str, str],
        token: Token | None,
        pages_in_flight: int | None,
    ) -> Iterator[Document]:
        if fieldsets and not self.whole_library_pages:
            pages = self.iter_documents(
                "library-entries",
                params={**params, **fieldsets},
                token=token,
                pages_in_flight=pages_in_flight,
            )
            try:
                first = next(pages)
            except KitsuFieldsRefused as exc:
                logger.warning(
                    "Kitsu refused the sparse fieldsets (%s); asking for whole pages.", exc
                )
                self.whole_library_pages = True
            else:
                yield first
                yield from pages
                return
        yield from self.iter_documents(
            "library-entries", params=params, token=token, pages_in_flight=pages_in_flight
        )

    def library_entry(
        self,
        entry_id: int | str,
        *,
        token: Token | None = None,
        include: Sequence[str] = ("anime", "anime.mappings"),
    ) -> Resource:
        path = f"library-entries/{_kitsu_id(entry_id, 'The library entry id')}"
        return self._one(path, params=_include(include), token=token)

    def create_library_entry(
        self,
        *,
        token: Token,
        user_id: int | str,
        anime_id: int | str,
        attributes: Mapping[str, Any],
        include: Sequence[str] = (),
    ) -> Resource:
        """Create an entry; `include` (e.g. `("anime",)`) adds linkage to the answer."""
        body = {
            "data": {
                "type": "libraryEntries",
                "attributes": dict(attributes),
                "relationships": {
                    "user": {"data": {"type": "users", "id": _kitsu_id(user_id, "The user id")}},
                    "anime": {"data": {"type": "anime", "id": _kitsu_id(anime_id, "The anime id")}},
                },
            }
        }
        return self._write("POST", "library-entries", token, include, body)

    def update_library_entry(
        self,
        *,
        token: Token,
        entry_id: int | str,
        attributes: Mapping[str, Any],
        include: Sequence[str] = (),
    ) -> Resource:
        """Update an entry; `include` (e.g. `("anime",)`) adds linkage to the answer."""
        entry = _kitsu_id(entry_id, "The library entry id")
        # Kitsu needs the id in the body too: 400 "A key is required" without it.
        body = {"data": {"type": "libraryEntries", "id": entry, "attributes": dict(attributes)}}
        return self._write("PATCH", f"library-entries/{entry}", token, include, body)

    def delete_library_entry(self, *, token: Token, entry_id: int | str) -> None:
        entry = _kitsu_id(entry_id, "The library entry id")
        _authorised(
            _require_token(token),
            lambda value: self.transport.request("DELETE", f"library-entries/{entry}", token=value),
        )

    def _write(
        self, method: str, path: str, token: Token, include: Sequence[str], body: Any
    ) -> Resource:
        response = _authorised(
            _require_token(token),
            lambda value: self.transport.request(
                method, path, token=value, params=_include(include) or None, json_body=body
            ),
        )
        document = parse_document(response.body)
        if not isinstance(document.data, Resource):
            raise KitsuResponseError("Kitsu's answer to a write holds no library entry.")
        return document.data
