"""The JSON:API routes under /api/edge: reads, filters, pagination and library-entry writes.

Order of checks, as in KS: a known but expired/revoked token is refused first (401); then
content negotiation (415/406) and request parsing (400); then the record lookup (404);
assigning an invalid enum blows up (500); then the policy (403); then validation (422).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from kitsu_sync.sandbox.query import (
    JSONAPI_MEDIA_TYPE,
    ApiError,
    Query,
    encode_document,
    in_range,
    internal_server_error,
    invalid_field_value,
    jr_error,
    page_links,
    parse_int_id,
    parse_query,
    parse_range,
    record_not_found,
    route_not_found,
    ruby_to_i,
    sort_records,
    underscore,
)
from kitsu_sync.sandbox.records import (
    LIBRARY_STATUSES,
    REACTION_SKIPPED,
    STATUS_ORDER,
    Anime,
    LibraryEntry,
    Media,
    User,
    format_date,
    parse_time,
)
from kitsu_sync.sandbox.resources import (
    KINDS,
    LIBRARY_ENTRIES,
    TARGETS,
    TYPE_ALIASES,
    DocumentBuilder,
    identifier,
    related,
    status_counts,
    validate_fields,
    validate_include,
)
from kitsu_sync.sandbox.store import (
    LibraryView,
    SandboxStore,
    ValidationFailed,
    entry_visible,
    media_visible,
)

EDGE = "/api/edge"
READ_ONLY = '"anime","manga","mappings","genres","categories","users"'
WITH_ENTRIES = f'{READ_ONLY},"library-entries"'
RULES = [
    Rule(f"{EDGE}/anime", endpoint="anime_index", methods=["GET"]),
    Rule(f"{EDGE}/manga", endpoint="manga_index", methods=["GET"]),
    Rule(f"{EDGE}/mappings", endpoint="mappings_index", methods=["GET"]),
    Rule(f"{EDGE}/genres", endpoint="genres_index", methods=["GET"]),
    Rule(f"{EDGE}/categories", endpoint="categories_index", methods=["GET"]),
    Rule(f"{EDGE}/users", endpoint="users_index", methods=["GET"]),
    Rule(f"{EDGE}/trending/<namespace>", endpoint="trending", methods=["GET"]),
    Rule(f"{EDGE}/library-entries", endpoint="entries_index", methods=["GET"]),
    Rule(f"{EDGE}/library-entries", endpoint="entries_create", methods=["POST"]),
    Rule(f"{EDGE}/library-entries/<id>", endpoint="entries_show", methods=["GET"]),
    Rule(f"{EDGE}/library-entries/<id>", endpoint="entries_update", methods=["PATCH", "PUT"]),
    Rule(f"{EDGE}/library-entries/<id>", endpoint="entries_destroy", methods=["DELETE"]),
    Rule(f"{EDGE}/<any({READ_ONLY}):collection>/<id>", endpoint="show", methods=["GET"]),
    Rule(
        f"{EDGE}/<any({WITH_ENTRIES}):collection>/<id>/relationships/<name>",
        endpoint="relationship",
        methods=["GET"],
    ),
    Rule(
        f"{EDGE}/<any({WITH_ENTRIES}):collection>/<id>/<name>",
        endpoint="related",
        methods=["GET"],
    ),
]
COLLECTION_TYPES = {
    "anime": "anime",
    "manga": "manga",
    "mappings": "mappings",
    "genres": "genres",
    "categories": "categories",
    "users": "users",
    "library-entries": "libraryEntries",
}

MEDIA_FILTERS = (
    "id",
    "slug",
    "subtype",
    "status",
    "since",
    "text",
    "season",
    "season_year",
    "year",
    "average_rating",
    "user_count",
    "episode_count",
    "episode_length",
    "age_rating",
    "genres",
    "categories",
)
MEDIA_SORTS = {
    "id": lambda m: m.id,
    "createdAt": lambda m: m.created_at,
    "updatedAt": lambda m: m.updated_at,
    "slug": lambda m: m.slug,
    "canonicalTitle": lambda m: m.canonical_title,
    "averageRating": lambda m: m.average_rating,
    "userCount": lambda m: m.user_count,
    "favoritesCount": lambda m: m.favorites_count,
    "startDate": lambda m: m.start_day,
    "endDate": lambda m: m.end_day,
    "popularityRank": lambda m: m.popularity_rank,
    "ratingRank": lambda m: m.rating_rank,
    "subtype": lambda m: m.subtype,
    "ageRating": lambda m: m.age_rating,
    "episodeCount": lambda m: getattr(m, "episode_count", None),
    "episodeLength": lambda m: getattr(m, "episode_length", None),
    "totalLength": lambda m: getattr(m, "total_length", None),
    "chapterCount": lambda m: getattr(m, "chapter_count", None),
    "nextRelease": lambda m: getattr(m, "next_release", None),
}
MAPPING_SORTS = {"id": lambda m: m.id}
USER_SORTS = {
    "id": lambda u: u.id,
    "createdAt": lambda u: u.created_at,
    "name": lambda u: u.name,
    "slug": lambda u: u.slug,
}
ENTRY_FILTERS = (
    "id",
    "user_id",
    "anime_id",
    "manga_id",
    "drama_id",
    "media_id",
    "media_type",
    "kind",
    "status",
    "since",
    "following",
    "title",
)


def _anime_of(store: SandboxStore, entry: LibraryEntry) -> Anime | None:
    return store.anime_by_id(entry.media_id) if entry.kind == "anime" else None


def _entry_sorts(store: SandboxStore) -> dict[str, Callable[[LibraryEntry], Any]]:
    def via_anime(read: Callable[[Anime], Any]) -> Callable[[LibraryEntry], Any]:
        def key(entry: LibraryEntry) -> Any:
            anime = _anime_of(store, entry)
            return None if anime is None else read(anime)

        return key

    return {
        "id": lambda e: e.id,
        "createdAt": lambda e: e.created_at,
        "updatedAt": lambda e: e.updated_at,
        "status": lambda e: STATUS_ORDER[e.status],
        "progress": lambda e: e.progress,
        "progressedAt": lambda e: e.progressed_at,
        "startedAt": lambda e: e.started_at,
        "finishedAt": lambda e: e.finished_at,
        "rating": lambda e: e.rating_twenty,
        "ratingTwenty": lambda e: e.rating_twenty,
        "reconsumeCount": lambda e: e.reconsume_count,
        "anime.subtype": via_anime(lambda a: a.subtype),
        "anime.episodeCount": via_anime(lambda a: a.episode_count),
        "anime.userCount": via_anime(lambda a: a.user_count),
        "anime.averageRating": via_anime(lambda a: a.average_rating),
        "anime.titles.canonical": via_anime(lambda a: a.canonical_title),
        "anime.titles.enJp": via_anime(lambda a: a.titles.get("en_jp")),
    }


def season_of(start_day: int | None) -> tuple[str, int] | None:
    """(season, seasonYear) of a start date; December is winter of the next year."""
    if start_day is None:
        return None
    year, month = (int(part) for part in (format_date(start_day) or "0-0").split("-")[:2])
    if month == 12:
        return "winter", year + 1
    return ("winter", "spring", "summer", "fall")[month // 3 if month >= 3 else 0], year


def _filter_error(value: str, name: str) -> ApiError:
    return jr_error(400, "Invalid filter value", f"{value} is not a valid value for {name}.", 107)


class EdgeApi:
    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self.entry_sorts = _entry_sorts(store)

    # --- plumbing ----------------------------------------------------------------------------

    def answer(self, request: Request, endpoint: str, values: dict[str, str]) -> Response:
        """The response of the endpoint the request was routed to."""
        try:
            viewer = self.viewer_for(request)
            handler = getattr(self, endpoint)
            with self.store.lock:
                return handler(request, viewer, **values)
        except ApiError as error:
            return respond(error.body, error.status, error.headers)

    def viewer_for(self, request: Request) -> User | None:
        """The token's user; anonymous for no token or an unknown one (KS validate_token!)."""
        token_string = bearer_token(request)
        if not token_string:
            return None
        token = self.store.tokens.find(token_string)
        if token is None:
            return None
        if not token.accessible(self.store.config.clock()):
            raise ApiError(
                401,
                {"errors": [{"title": "Invalid token", "status": "401"}]},
                {"WWW-Authenticate": "Bearer"},
            )
        return self.store.user_by_id(token.user_id)

    @staticmethod
    def base(request: Request) -> str:
        return request.host_url.rstrip("/") + EDGE

    def url(self, request: Request) -> str:
        return request.host_url.rstrip("/") + request.path

    def builder(self, request: Request, viewer: User | None, query: Query) -> DocumentBuilder:
        return DocumentBuilder(self.store, self.base(request), viewer, query.fields)

    def collection(
        self,
        request: Request,
        viewer: User | None,
        query: Query,
        records: list[Any],
        *,
        meta: dict[str, Any] | None = None,
        paginate: bool = True,
    ) -> Response:
        count = len(records)
        page = records[query.offset : query.offset + query.limit] if paginate else records
        builder = self.builder(request, viewer, query)
        data = builder.resources(page, query.include)
        extra: dict[str, Any] = {"meta": {**(meta or {}), "count": count}}
        if paginate:
            extra["links"] = page_links(self.url(request), query, count)
        return respond(builder.document(data, **extra))

    def query(self, request: Request, type_name: str, **options: Any) -> Query:
        return parse_query(
            request.args.items(multi=True),
            resource_type=type_name,
            include_validator=lambda tree: validate_include(tree, (type_name,)),
            field_validator=validate_fields,
            **options,
        )

    # --- media -------------------------------------------------------------------------------

    def anime_index(self, request: Request, viewer: User | None) -> Response:
        return self.media_index(request, viewer, "anime", self.store.anime)

    def manga_index(self, request: Request, viewer: User | None) -> Response:
        return self.media_index(request, viewer, "manga", self.store.manga)

    def media_index(
        self, request: Request, viewer: User | None, type_name: str, catalog: list[Any]
    ) -> Response:
        query = self.query(request, type_name, allowed_filters=MEDIA_FILTERS, sortable=MEDIA_SORTS)
        records = self.filter_media(query, [m for m in catalog if media_visible(m, viewer)])
        if query.sort:
            records = sort_records(records, query.sort, MEDIA_SORTS)
        elif query.has_filter("text"):
            # Search results default to relevance; titles weigh more than the description.
            terms = query.filters["text"].casefold().split()
            records.sort(key=lambda m: (-_relevance(m, terms), -m.user_count, m.id))
        return self.collection(request, viewer, query, records)

    # One branch per filter, mirroring Kitsu's list of media filters: kept in one place.
    def filter_media(self, query: Query, records: list[Media]) -> list[Media]:  # noqa: C901
        for name in query.filters:
            raw = query.filters[name]
            values = query.filter_values(name) or []
            label = query.raw_filter_keys[name]
            if name == "id":
                wanted_ids = {ruby_to_i(v) for v in values}
                records = [m for m in records if m.id in wanted_ids]
            elif name == "slug":
                records = [m for m in records if m.slug in values]
            elif name == "subtype":
                records = [m for m in records if m.subtype in values]
            elif name == "status":
                records = [m for m in records if m.status in values]
            elif name == "age_rating":
                records = [m for m in records if m.age_rating in values]
            elif name == "since":
                moment = parse_time(raw)
                if moment is None:
                    raise _filter_error(raw, label)
                records = [m for m in records if m.updated_at >= moment]
            elif name == "text":
                terms = raw.casefold().split()
                records = [m for m in records if _relevance(m, terms) > 0]
            elif name in ("genres", "categories"):
                by_slug = {
                    g.slug: g.id
                    for g in (self.store.genres if name == "genres" else self.store.categories)
                }
                wanted = [by_slug.get(v, -1) for v in values]
                records = [
                    m
                    for m in records
                    if all(
                        w in (m.genre_ids if name == "genres" else m.category_ids) for w in wanted
                    )
                ]
            elif name == "season":
                seasons = {v.lower() for v in values}
                records = [m for m in records if (season_of(m.start_day) or ("",))[0] in seasons]
            else:
                bounds = parse_range(raw)
                if bounds is None:
                    raise _filter_error(raw, label)
                read = _numeric_media_fields()[name]
                records = [m for m in records if in_range(read(m), bounds)]
        return records

    def show(self, request: Request, viewer: User | None, collection: str, id: str) -> Response:
        type_name = COLLECTION_TYPES[collection]
        query = self.query(request, type_name, allowed_filters=(), paginate=False)
        record = self.find(type_name, id, viewer)
        builder = self.builder(request, viewer, query)
        return respond(builder.document(builder.resource(record, query.include)))

    def find(self, type_name: str, raw_id: str, viewer: User | None) -> Any:
        record_id = parse_int_id(raw_id)
        if record_id is None:
            raise invalid_field_value("id", raw_id)
        record = self.record_by_id(type_name, record_id)
        # A title or entry the viewer may not see is as missing as one that does not exist.
        if record is None or not _visible(record, viewer):
            raise record_not_found(raw_id)
        return record

    def record_by_id(self, type_name: str, record_id: int) -> Any:
        """The record of this type with this id, visible or not; any other type is an entry."""
        store = self.store
        finders: dict[str, Callable[[int], Any]] = {
            "anime": store.anime_by_id,
            "manga": store.manga_by_id,
            "mappings": store.mapping_by_id,
            "genres": store.genre_by_id,
            "categories": store.category_by_id,
            "users": store.user_by_id,
        }
        return finders.get(type_name, store.entry_by_id)(record_id)

    def related(
        self, request: Request, viewer: User | None, collection: str, id: str, name: str
    ) -> Response:
        type_name = COLLECTION_TYPES[collection]
        relationship = self.relationship_name(type_name, name)
        parent = self.find(type_name, id, viewer)
        target = related(self.store, parent, relationship, viewer)
        if isinstance(target, list):
            target = [t for t in target if _visible(t, viewer)]
            target_type = TARGETS.get((type_name, relationship), (type_name,))[0]
            query = self.query(
                request,
                target_type,
                allowed_filters=(),
                max_limit=500 if target_type == "libraryEntries" else 20,
            )
            return self.collection(request, viewer, query, target)
        query = self.query(request, type_name, allowed_filters=(), paginate=False)
        builder = self.builder(request, viewer, query)
        if target is not None and not _visible(target, viewer):
            target = None
        data = None if target is None else builder.resource(target, query.include)
        return respond(builder.document(data))

    def relationship(
        self, request: Request, viewer: User | None, collection: str, id: str, name: str
    ) -> Response:
        type_name = COLLECTION_TYPES[collection]
        relationship = self.relationship_name(type_name, name)
        parent = self.find(type_name, id, viewer)
        target = related(self.store, parent, relationship, viewer)
        url = f"{self.base(request)}/{collection}/{id}"
        data: Any
        if isinstance(target, list):
            data = [identifier(t) for t in target]
        else:
            data = None if target is None else identifier(target)
        return respond(
            {
                "links": {
                    "self": f"{url}/relationships/{name}",
                    "related": f"{url}/{name}",
                },
                "data": data,
            }
        )

    @staticmethod
    def relationship_name(type_name: str, dashed: str) -> str:
        camel = underscore(dashed)
        head, *rest = camel.split("_")
        name = head + "".join(part.capitalize() for part in rest)
        if name not in KINDS[type_name].relationships:
            raise route_not_found()
        return name

    # --- other collections -------------------------------------------------------------------

    def mappings_index(self, request: Request, viewer: User | None) -> Response:
        query = self.query(
            request,
            "mappings",
            allowed_filters=("external_site", "external_id", "item_id", "item_type"),
            sortable=MAPPING_SORTS,
        )
        sites = query.filter_values("external_site")
        external_ids = query.filter_values("external_id")
        store = self.store
        if external_ids is not None:
            found = [
                m
                for external_id in dict.fromkeys(external_ids)
                for m in store.mappings_for(None, external_id)
            ]
        elif query.has_filter("item_id"):
            found = [
                m
                for item_id in query.filter_values("item_id") or []
                for anime in [store.anime_by_id(ruby_to_i(item_id))]
                if anime is not None
                for m in anime.mappings
            ]
        else:
            found = list(store.all_mappings())
        if sites is not None:
            found = [m for m in found if m.external_site in sites]
        # Seeded mappings all point at anime (the polymorphic item_type "Anime").
        if query.has_filter("item_type") and "Anime" not in (
            query.filter_values("item_type") or []
        ):
            found = []
        found = sorted({m.id: m for m in found}.values(), key=lambda m: m.id)
        if query.sort:
            found = sort_records(found, query.sort, MAPPING_SORTS)
        return self.collection(request, viewer, query, found)

    def genres_index(self, request: Request, viewer: User | None) -> Response:
        # Genres and categories use Kitsu's UnlimitedPaginator: everything, no page links.
        query = self.query(request, "genres", allowed_filters=("slug",), paginate=False)
        records = self.store.genres
        if query.has_filter("slug"):
            records = [g for g in records if g.slug in (query.filter_values("slug") or [])]
        return self.collection(request, viewer, query, records, paginate=False)

    def categories_index(self, request: Request, viewer: User | None) -> Response:
        query = self.query(
            request,
            "categories",
            allowed_filters=("slug", "parent_id"),
            paginate=False,
        )
        records = self.store.categories
        if query.has_filter("slug"):
            records = [c for c in records if c.slug in (query.filter_values("slug") or [])]
        if query.has_filter("parent_id"):
            parents = {ruby_to_i(v) for v in query.filter_values("parent_id") or []}
            records = [c for c in records if c.parent_id in parents]
        return self.collection(request, viewer, query, records, paginate=False)

    def users_index(self, request: Request, viewer: User | None) -> Response:
        query = self.query(
            request,
            "users",
            allowed_filters=("self", "slug", "name", "query"),
            sortable=USER_SORTS,
        )
        records = list(self.store.users)
        if query.has_filter("self"):
            # KS UserResource: where(id: current_user&.id), so no token gives an empty array.
            records = [u for u in records if viewer is not None and u.id == viewer.id]
        if query.has_filter("slug"):
            slugs = {v.lower() for v in query.filter_values("slug") or []}
            records = [u for u in records if u.slug.lower() in slugs]
        if query.has_filter("name"):
            names = {v.lower() for v in query.filter_values("name") or []}
            records = [u for u in records if u.name.lower() in names]
        if query.has_filter("query"):
            text = query.filters["query"].casefold()
            records = [u for u in records if text in u.name.casefold() or text in u.slug]
        if query.sort:
            records = sort_records(records, query.sort, USER_SORTS)
        return self.collection(request, viewer, query, records)

    def trending(self, request: Request, viewer: User | None, namespace: str) -> Response:
        if namespace not in ("anime", "manga", "drama"):
            raise ApiError(400, {"errors": [{"status": 400, "detail": "Invalid namespace"}]})
        if request.args.get("in_network") == "true" and viewer is None:
            raise ApiError(
                403, {"errors": [{"status": 403, "detail": "Must be logged in for in_network"}]}
            )
        raw_limit = request.args.get("limit")
        limit = 10 if raw_limit is None else max(ruby_to_i(raw_limit), 0)
        catalog = {"anime": self.store.anime, "manga": self.store.manga}.get(namespace, [])
        ranked = sorted(
            (m for m in catalog if media_visible(m, viewer)),
            key=lambda m: (m.status != "current", -m.user_count, m.id),
        )
        builder = DocumentBuilder(self.store, self.base(request), viewer)
        # TrendingController answers with `data` only: no meta, links or included.
        return respond({"data": builder.resources(ranked[:limit])})

    # --- library entries: reads --------------------------------------------------------------

    def entries_index(self, request: Request, viewer: User | None) -> Response:
        if not any(key.startswith("filter[") for key in request.args):
            raise ApiError(400, {"errors": [{"status": 400, "detail": "No filter provided"}]})
        query = self.query(
            request,
            "libraryEntries",
            allowed_filters=ENTRY_FILTERS,
            sortable=self.entry_sorts,
            max_limit=500,
        )
        user_ids = None
        if query.has_filter("user_id"):
            user_ids = [ruby_to_i(v) for v in query.filter_values("user_id") or []]
        # Pages of one listing share it: only the first request filters and sorts the library.
        key = (
            None if user_ids is None else tuple(user_ids),
            None if viewer is None else (viewer.id, viewer.sfw_filter),
            tuple(sorted(query.filters.items())),
            tuple(query.sort),
        )
        view = self.store.library_view(
            key, user_ids, lambda: self.library_listing(query, viewer, user_ids)
        )
        return self.collection(
            request, viewer, query, view.entries, meta={"statusCounts": view.status_counts}
        )

    def library_listing(
        self, query: Query, viewer: User | None, user_ids: list[int] | None
    ) -> LibraryView:
        entries = [e for e in self.store.library(user_ids) if entry_visible(e, viewer)]
        entries = self.filter_entries(query, entries)
        counts = status_counts(entries)
        if query.has_filter("status"):
            statuses = set(query.filter_values("status") or [])
            entries = [e for e in entries if e.status in statuses]
        if query.sort:
            entries = sort_records(entries, query.sort, self.entry_sorts)
        return LibraryView(entries, counts)

    # One branch per filter, mirroring Kitsu's list of library-entry filters: kept in one place.
    def filter_entries(self, query: Query, entries: list[LibraryEntry]) -> list[LibraryEntry]:  # noqa: C901
        store = self.store
        for name in query.filters:
            raw = query.filters[name]
            values = query.filter_values(name) or []
            numbers = {ruby_to_i(v) for v in values}
            if name == "id":
                entries = [e for e in entries if e.id in numbers]
            elif name in ("anime_id", "manga_id", "drama_id"):
                kind = name.removesuffix("_id")
                entries = [e for e in entries if e.kind == kind and e.media_id in numbers]
            elif name == "media_id":
                # Deprecated: without media_type it matches anime and manga sharing the id.
                entries = [e for e in entries if e.media_id in numbers]
            elif name == "media_type":
                kinds = {v.lower() for v in values}
                entries = [e for e in entries if e.kind in kinds]
            elif name == "kind":
                kinds = set(values)
                entries = [e for e in entries if e.kind in kinds]
            elif name == "since":
                moment = parse_time(raw)
                if moment is None:
                    raise _filter_error(raw, query.raw_filter_keys[name])
                entries = [e for e in entries if e.updated_at >= moment]
            elif name == "following":
                # The sandbox has no follows, so nobody is followed.
                entries = []
            elif name == "title":
                terms = raw.casefold().split()
                entries = [e for e in entries if _relevance(store.entry_media(e), terms) > 0]
        return entries

    def entries_show(self, request: Request, viewer: User | None, id: str) -> Response:
        query = self.query(request, "libraryEntries", allowed_filters=(), paginate=False)
        entry = self.find("libraryEntries", id, viewer)
        builder = self.builder(request, viewer, query)
        return respond(builder.document(builder.resource(entry, query.include)))

    # --- library entries: writes -------------------------------------------------------------

    def entries_create(self, request: Request, viewer: User | None) -> Response:
        check_write_headers(request, body=True)
        data = request_data(request)
        check_type(data)
        changes, problems = parse_attributes(data.get("attributes"))
        links = parse_relationships(data.get("relationships"))
        query = self.query(request, "libraryEntries", allowed_filters=(), paginate=False)
        owner = links.get("user")
        if viewer is None or owner is None or owner[1] != str(viewer.id):
            raise forbidden("Create", "create")
        media = None
        for name in ("media", "anime", "manga"):
            if links.get(name) is not None:
                media_type, media_id = links[name]
                media = self.store.media(media_type, parse_int_id(media_id) or 0)
        if problems:
            raise validation_error(problems)
        try:
            entry = self.store.create_entry(viewer, media, changes)
        except ValidationFailed as failure:
            raise validation_error(failure.problems) from None
        builder = self.builder(request, viewer, query)
        return respond(builder.document(builder.resource(entry, query.include)), 201)

    def entries_update(self, request: Request, viewer: User | None, id: str) -> Response:
        check_write_headers(request, body=True)
        data = request_data(request)
        if data.get("id") is None:
            raise jr_error(
                400, "A key is required", "The resource object does not contain a key.", 109
            )
        if str(data["id"]) != id:
            raise jr_error(
                400,
                "Key is not included in URL",
                f"The URL does not allow the key {data['id']}",
                110,
            )
        check_type(data)
        changes, problems = parse_attributes(data.get("attributes"))
        links = parse_relationships(data.get("relationships"))
        query = self.query(request, "libraryEntries", allowed_filters=(), paginate=False)
        entry = self.find("libraryEntries", id, viewer)
        owner = links.get("user")
        if (
            viewer is None
            or viewer.id != entry.user_id
            or (owner is not None and owner[1] != str(viewer.id))
        ):
            raise forbidden("Update", "update")
        if problems:
            raise validation_error(problems)
        try:
            self.store.update_entry(entry, changes)
        except ValidationFailed as failure:
            raise validation_error(failure.problems) from None
        builder = self.builder(request, viewer, query)
        return respond(builder.document(builder.resource(entry, query.include)))

    def entries_destroy(self, request: Request, viewer: User | None, id: str) -> Response:
        check_write_headers(request, body=False)
        entry = self.find("libraryEntries", id, viewer)
        if viewer is None or viewer.id != entry.user_id:
            raise forbidden("Destroy", "destroy")
        self.store.delete_entry(entry)
        response = Response(status=204)
        del response.headers["Content-Type"]
        return response


def _numeric_media_fields() -> dict[str, Callable[[Media], float | None]]:
    return {
        "average_rating": lambda m: None if m.average_rating is None else m.average_rating / 100,
        "user_count": lambda m: m.user_count,
        "episode_count": lambda m: getattr(m, "episode_count", None),
        "episode_length": lambda m: getattr(m, "episode_length", None),
        "year": lambda m: None if m.start_day is None else int(_iso(m.start_day)[:4]),
        "season_year": lambda m: (season_of(m.start_day) or (None, None))[1],
    }


def _iso(day: int) -> str:
    return format_date(day) or ""


def _relevance(media: Media, terms: list[str]) -> int:
    if not terms:
        return 0
    titles = " ".join(t for t in media.titles.values() if t).casefold()
    text = media.search_text()
    if not all(term in text for term in terms):
        return 0
    return 1 + sum(2 for term in terms if term in titles)


def _visible(record: Any, viewer: User | None) -> bool:
    if isinstance(record, Media):
        return media_visible(record, viewer)
    if isinstance(record, LibraryEntry):
        return entry_visible(record, viewer)
    return True


def respond(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        encode_document(payload), status=status, headers=headers, content_type=JSONAPI_MEDIA_TYPE
    )


def bearer_token(request: Request) -> str | None:
    """Doorkeeper reads the token from `Authorization: Bearer`, or `access_token`/`bearer_token`."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.args.get("access_token") or request.args.get("bearer_token") or None


def check_write_headers(request: Request, *, body: bool) -> None:
    if body and request.mimetype != JSONAPI_MEDIA_TYPE:
        raise jr_error(
            415,
            "Unsupported media type",
            "All requests that create or update must use the 'application/vnd.api+json' "
            f"Content-Type. This request specified '{request.mimetype}'.",
            415,
        )
    accept = request.headers.get("Accept", "").strip()
    if accept:
        types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
        if not any(t in (JSONAPI_MEDIA_TYPE, "*/*") for t in types):
            raise jr_error(
                406,
                "Not acceptable",
                "All requests must use the 'application/vnd.api+json' Accept without media "
                f"type parameters. This request specified '{accept}'.",
                406,
            )


def request_data(request: Request) -> dict[str, Any]:
    try:
        document = json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        raise jr_error(400, "Bad Request", "The request body is not valid JSON.", 400) from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise jr_error(400, "Missing Parameter", "The required parameter, data, is missing.", 106)
    return data


def check_type(data: dict[str, Any]) -> None:
    type_name = data.get("type")
    if type_name is None:
        raise jr_error(400, "Missing Parameter", "The required parameter, type, is missing.", 106)
    if TYPE_ALIASES.get(str(type_name)) != LIBRARY_ENTRIES.type:
        raise jr_error(400, "Invalid resource", f"{type_name} is not a valid resource.", 101)


def forbidden(action: str, verb: str) -> ApiError:
    # hummingbird-me/pundit-resources reject_forbidden_request
    return jr_error(
        403,
        f"{action} Forbidden",
        f"You don't have permission to {verb} this library entry.",
        403,
    )


# The deprecated `rating` string is writable too (stored as value * 4).
WRITABLE_ATTRIBUTES = {*LibraryEntry.WRITABLE, "rating"}
INTEGER_ATTRIBUTES = {"progress", "volumes_owned", "reconsume_count", "rating_twenty"}
BOOLEAN_ATTRIBUTES = {"reconsuming", "private"}
TIME_ATTRIBUTES = {"progressed_at", "started_at", "finished_at"}
FALSE_STRINGS = {"0", "f", "false", "off", "no", "n"}


def parse_attributes(raw: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Model changes from JSON:API attributes, plus cast problems (reported as 422 later).

    Unknown or read-only keys give 400 code 105 now; an invalid enum value gives a 500, as
    Rails raises ArgumentError when it is assigned.
    """
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        raise jr_error(400, "Invalid data format", "Attributes must be an object.", 122)
    changes: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in raw.items():
        name = underscore(key)
        if name not in WRITABLE_ATTRIBUTES:
            raise jr_error(400, "Param not allowed", f"{key} is not allowed.", 105)
        _cast_attribute(name, value, raw, changes, problems)
    return changes, problems


def _cast_attribute(
    name: str,
    value: Any,
    raw: dict[str, Any],
    changes: dict[str, Any],
    problems: list[tuple[str, str]],
) -> None:
    """Add one writable attribute to the changes, or its cast problem to the problems."""
    if name == "status":
        changes[name] = _enum_value(value, LIBRARY_STATUSES, nullable=True)
    elif name == "reaction_skipped":
        changes[name] = _enum_value(value, REACTION_SKIPPED, nullable=False)
    elif name in INTEGER_ATTRIBUTES:
        number = _integer(value)
        if number is False:
            problems.append(("rating" if name == "rating_twenty" else name, "is not a number"))
        else:
            changes[name] = number
    elif name == "rating":
        _cast_deprecated_rating(value, raw, changes, problems)
    elif name in BOOLEAN_ATTRIBUTES:
        changes[name] = _boolean(value)
    elif name in TIME_ATTRIBUTES:
        changes[name] = parse_time(value) if isinstance(value, str) else None
    else:  # notes
        changes[name] = None if value is None else str(value)


def _enum_value(value: Any, allowed: Collection[str], *, nullable: bool) -> Any:
    """The value itself; one outside the enum is a 500, as Rails raises ArgumentError."""
    if nullable and value is None:
        return value
    if value not in allowed:
        raise internal_server_error()
    return value


def _boolean(value: Any) -> bool:
    """A boolean cast as Rails does (FALSE_STRINGS are false, all else true); null is a 500."""
    if value is None:
        raise internal_server_error()
    return str(value).strip().lower() not in FALSE_STRINGS


def _cast_deprecated_rating(
    value: Any,
    raw: dict[str, Any],
    changes: dict[str, Any],
    problems: list[tuple[str, str]],
) -> None:
    """Deprecated 0.5..5 rating: Kitsu stores value * 4 as ratingTwenty, which wins if sent."""
    if "rating_twenty" in {underscore(k) for k in raw}:
        return
    if value is None:
        changes["rating_twenty"] = None
        return
    try:
        changes["rating_twenty"] = round(float(value) * 4)
    except (TypeError, ValueError):
        problems.append(("rating", "is not a number"))


def _integer(value: Any) -> int | bool | None:
    """An integer, None for null, or False when it is not a number."""
    if value is None:
        return None
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return False


RELATIONSHIP_TYPES = {
    "user": ("users",),
    "anime": ("anime",),
    "manga": ("manga",),
    "drama": ("dramas",),
    "media": ("anime", "manga", "dramas"),
}


def parse_relationships(raw: Any) -> dict[str, tuple[str, str] | None]:
    """{relationship: (type, id) or None} from a write body's relationships."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise jr_error(400, "Invalid data format", "Relationships must be an object.", 122)
    links: dict[str, tuple[str, str] | None] = {}
    for key, value in raw.items():
        name = underscore(key)
        if name not in RELATIONSHIP_TYPES:
            raise jr_error(400, "Param not allowed", f"{key} is not allowed.", 105)
        if not isinstance(value, dict) or "data" not in value:
            raise jr_error(400, "Invalid Links Object", "Data is not a valid Links Object.", 115)
        linkage = value["data"]
        if linkage is None:
            links[name] = None
            continue
        if not isinstance(linkage, dict) or set(linkage) != {"type", "id"} or linkage["id"] is None:
            raise jr_error(400, "Invalid Links Object", "Data is not a valid Links Object.", 115)
        type_name = underscore(str(linkage["type"])).replace("_", "")
        accepted = {t.replace("_", "").lower() for t in RELATIONSHIP_TYPES[name]}
        if type_name.lower() not in accepted:
            raise jr_error(
                400, "Type Mismatch", f"{linkage['type']} is not a valid type for {key}.", 116
            )
        links[name] = (type_name.lower(), str(linkage["id"]))
    return links


def validation_error(problems: list[tuple[str, str]]) -> ApiError:
    """JR ValidationErrors: one error per message; the pointer uses the model column name."""
    errors = []
    for field_name, message in problems:
        if field_name == "anime_id":
            detail = f"anime_id {message}"
            pointer = "/data/relationships/anime"
        elif field_name in ("media", "user"):
            detail = f"{field_name} - {message}"
            pointer = f"/data/relationships/{field_name}"
        else:
            key = re.sub(r"_(\w)", lambda m: m[1].upper(), field_name)
            detail = f"{key} - {message}"
            pointer = f"/data/attributes/{key}"
        errors.append(
            {
                "title": message,
                "detail": detail,
                "code": "100",
                "source": {"pointer": pointer},
                "status": "422",
            }
        )
    return ApiError(422, {"errors": errors})
