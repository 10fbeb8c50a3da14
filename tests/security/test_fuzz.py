"""Fuzzing the path Kitsu data takes: deserialiser -> mapping -> merge -> write attributes.

Whatever Kitsu (or a proxy in front of it) sends, and whatever an old or damaged
`synced_values` column holds, only the project's own errors may escape: `KitsuError` from
`parse_document`, `MappingError` from the mapping, and `ValueError` from `merge_entry` for a
direction that does not exist. Anything else (KeyError, TypeError, AttributeError...) fails.

CI runs FUZZ_EXAMPLES cases per property (100 by default). A long run, off CI:

    FUZZ_EXAMPLES=200000 ENV_FILE=tests/test.env .venv/bin/pytest tests/security/test_fuzz.py \
        -p no:xdist -p no:randomly --hypothesis-show-statistics

Existing properties elsewhere: `tests/kitsu_api/test_jsonapi.py` (any JSON into
`parse_document`) and `tests/test_mapping.py` (documents shaped like Kitsu's into the mapping).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kitsu_sync.kitsu_api import KitsuError
from kitsu_sync.kitsu_api.jsonapi import Resource, parse_document
from kitsu_sync.mapping import (
    KITSU_STATUSES,
    REVENGE_STATUSES,
    MappingError,
    anime_fields,
    external_ids,
    kitsu_entry_attributes,
    library_entry_fields,
)
from kitsu_sync.merge import (
    SYNCED_FIELDS,
    SyncDirection,
    base_after,
    base_after_write,
    merge_entry,
    model_values,
    snapshot,
)
from tests.kitsu_api import payloads

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- values a JSON body can decode to (json.loads accepts NaN, Infinity and lone surrogates) ---

any_text = st.text(st.characters(codec=None), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | any_text
    | st.sampled_from(["", "0", "-1", "1e400", "NaN", " 7 ", "2025-13-45", "2018-09-28T08:16Z"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(any_text, json_values, max_size=3)
# What PostgreSQL's jsonb can hold (no NaN or infinities): a stored synced_values column.
stored_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
)
stored_values = st.recursive(
    stored_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3)
    ),
    max_leaves=6,
)

timestamps = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
iso_times = timestamps.map(lambda moment: moment.isoformat().replace("+00:00", "Z"))
iso_dates = st.dates().map(date.isoformat)


def mostly(
    valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any], *, odds: int = 3
) -> st.SearchStrategy[Any]:
    """`valid` `odds` times as often as `odd`: deep paths get reached, and so do the edges.

    (`st.one_of` would not do: it draws each distinct branch equally often.)
    """
    return st.sampled_from([valid] * odds + [odd]).flatmap(lambda chosen: chosen)


def rarely_odd(valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
    # For structure: one malformed piece makes the whole document unreadable.
    return mostly(valid, odd, odds=12)


ids = rarely_odd(
    st.integers(1, 2**63 - 1).map(str),
    st.integers(-5, 2**64).map(str)
    | st.integers(1, 10**6)
    | any_text
    | st.sampled_from(["01", "9223372036854775808", " 1", "1.0", "\u0661"]),
)

# Each attribute: a value of the right kind near its edges, or anything JSON can hold.
ANIME_VALUES: dict[str, Any] = {
    "averageRating": st.decimals(-1, 101, places=3).map(str) | st.floats(),
    "episodeCount": st.integers(-1, 2**32),
    "episodeLength": st.integers(-1, 2**32) | st.floats(),
    "ratingRank": st.integers(-1, 2**32),
    "popularityRank": st.integers(-1, 2**32),
    "startDate": iso_dates,
    "endDate": iso_dates,
    "updatedAt": iso_times,
    "status": st.sampled_from(["finished", "current", "upcoming", "unreleased", "tba", "x"]),
    "subtype": st.sampled_from(["TV", "special", "OVA", "ONA", "movie", "music", "tv"]),
    "ageRating": st.sampled_from(["G", "PG", "R", "R18"]),
    "titles": st.dictionaries(st.sampled_from(["en", "en_jp", "ja_jp", "en_us"]), any_text),
    "canonicalTitle": any_text,
    "posterImage": st.dictionaries(st.sampled_from(["large", "medium", "original"]), any_text),
}
ENTRY_VALUES: dict[str, Any] = {
    "status": st.sampled_from(["current", "planned", "completed", "on_hold", "dropped", "x"]),
    "progress": st.integers(-1, 2**32),
    "ratingTwenty": st.integers(0, 22),
    "reconsuming": st.booleans(),
    "reconsumeCount": st.integers(-1, 2**16),
    "notes": any_text,
    "private": st.booleans(),
    "updatedAt": iso_times,
    "startedAt": iso_times,
    "finishedAt": iso_times,
    "progressedAt": iso_times,
    "createdAt": iso_times,
}
MAPPING_VALUES: dict[str, Any] = {
    "externalSite": st.sampled_from(
        ["myanimelist/anime", "anilist/anime", "anidb", "thetvdb", "thetvdb/series", "x"]
    ),
    "externalId": st.integers(-1, 2**64).map(str) | st.just("76885/1") | any_text,
}


def attributes(base: dict[str, Any], plausible: dict[str, Any]) -> st.SearchStrategy[dict]:
    """The real attribute set, each value plausible, real, null or anything; a few attributes
    dropped, a few stray ones added."""
    names = sorted(set(base) | set(plausible))

    def value_for(name: str) -> st.SearchStrategy[Any]:
        real = st.just(base[name]) if name in base else st.none()
        return mostly(plausible.get(name, real), real | st.none() | json_values)

    def assemble(values: dict[str, Any], dropped: list[str], strays: dict[str, Any]) -> dict:
        return {**{k: v for k, v in values.items() if k not in dropped}, **strays}

    return st.builds(
        assemble,
        st.fixed_dictionaries({name: value_for(name) for name in names}),
        st.lists(st.sampled_from(names), max_size=2) if names else st.just([]),
        st.dictionaries(any_text, json_values, max_size=2),
    )


def identifier(types: list[str]) -> st.SearchStrategy[Any]:
    return rarely_odd(
        st.fixed_dictionaries({"type": st.sampled_from(types), "id": ids}), json_values
    )


def relationship_value(types: list[str]) -> st.SearchStrategy[Any]:
    linkage = st.none() | identifier(types) | st.lists(identifier(types), max_size=3)
    return rarely_odd(
        st.fixed_dictionaries({"data": linkage}, optional={"links": json_values})
        | st.fixed_dictionaries({"links": st.dictionaries(any_text, any_text, max_size=2)}),
        json_values,
    )


TYPES = ("anime", "libraryEntries", "mappings")
RELATIONSHIPS = {
    "anime": ["anime", "manga"],
    "media": ["anime", "manga", "drama"],
    "manga": ["manga"],
    "drama": ["drama"],
    "mappings": ["mappings"],
    "item": ["anime"],
}


def resource(
    type_: str, base: dict[str, Any], plausible: dict[str, Any], *, linked: tuple[str, ...]
) -> st.SearchStrategy[Any]:
    """A resource of `type_` (or another type), its `linked` relationships usually present."""
    others = {name: relationship_value(types) for name, types in RELATIONSHIPS.items()}
    relationships = st.fixed_dictionaries(
        {name: others.pop(name) for name in linked}, optional=others
    )
    return st.fixed_dictionaries(
        {
            "type": rarely_odd(
                st.just(type_), st.sampled_from(["users", "manga", *TYPES]) | any_text
            ),
            "id": ids,
            "attributes": rarely_odd(attributes(base, plausible), json_values),
            "relationships": rarely_odd(relationships, json_values),
        },
        optional={
            "links": rarely_odd(json_objects, json_values),
            "meta": rarely_odd(json_objects, json_values),
        },
    )


kitsu_resources = st.one_of(
    resource("anime", payloads.cowboy_bebop_attributes(), ANIME_VALUES, linked=("mappings",)),
    resource(
        "libraryEntries", payloads.library_entry_attributes(), ENTRY_VALUES, linked=("anime",)
    ),
    resource("mappings", {}, MAPPING_VALUES, linked=("item",)),
)
documents = rarely_odd(
    st.fixed_dictionaries(
        {"data": rarely_odd(st.lists(kitsu_resources, max_size=3), st.none() | kitsu_resources)},
        optional={
            "included": rarely_odd(st.lists(kitsu_resources, max_size=4), json_values),
            "links": rarely_odd(
                st.fixed_dictionaries({}, optional={"next": any_text | json_values}), json_values
            ),
            "meta": rarely_odd(json_objects, json_values),
            "errors": rarely_odd(st.lists(json_values, max_size=2), json_values),
        },
    ),
    st.dictionaries(st.sampled_from(["data", "errors", "meta", "included"]), json_values),
)


def resources_of(payload: Any) -> list[Resource]:
    try:
        document = parse_document(payload)
    except KitsuError:
        return []
    document.next_url  # noqa: B018 (it must not raise either)
    found = [*document.resources, *document.included]
    for item in found:
        for name in item.relationships:
            item.related(name)
            item.related_list(name)
    return found


def mapped(resource: Resource) -> dict[str, Any] | None:
    """The mapping for this resource type, or None when it refused (MappingError)."""
    function = {"anime": anime_fields, "libraryEntries": library_entry_fields}.get(resource.type)
    try:
        if function is not None:
            return function(resource)
        if resource.type == "mappings":
            return external_ids([resource])
        return None
    except MappingError:
        return None


@FUZZ
@given(documents)
def test_any_document_is_deserialised_and_mapped_or_refused_with_the_projects_errors(
    payload: dict[str, Any],
) -> None:
    found = resources_of(payload)
    event(f"resources parsed: {min(len(found), 3)}")
    for item in found:
        fields = mapped(item)
        outcome = "refused" if fields is None else "mapped"
        event(f"{item.type if item.type in TYPES else 'other'}: {outcome}")
        if fields is None:
            continue
        if item.type == "anime":
            assert isinstance(fields["kitsu_id"], int)
            assert 0 < fields["kitsu_id"] < 2**63
            assert all(isinstance(fields[name], str) for name in ("title", "slug", "poster_url"))
            score = fields["kitsu_score"]
            assert score is None or (isinstance(score, Decimal) and 0 <= score <= 100)
        elif item.type == "libraryEntries":
            assert fields["status"] in REVENGE_STATUSES
            assert isinstance(fields["progress"], int)
            assert 0 <= fields["progress"] < 2**31
            assert fields["score"] is None or 10 <= fields["score"] <= 100
            assert isinstance(fields["notes"], str)
            assert fields["kitsu_updated_at"].tzinfo is not None
        else:
            assert all(value is None or value > 0 for value in fields.values())


@FUZZ
@given(st.binary(max_size=64) | any_text)
def test_any_body_that_decodes_as_json_is_handled(body: bytes | str) -> None:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return  # the transport turns an undecodable body into KitsuResponseError
    for item in resources_of(payload):
        mapped(item)


anything = json_values | timestamps | st.dates() | st.datetimes()
VALID_WRITE = {
    "status": st.sampled_from(REVENGE_STATUSES),
    "progress": st.integers(0, 2**40),
    "score": st.none() | st.integers(0, 100),
    "rewatching": st.booleans(),
    "rewatch_count": st.integers(0, 2**40),
    "notes": st.none() | any_text,
    "private": st.none() | st.booleans(),
    "started_at": st.none() | timestamps | st.datetimes(timezones=st.timezones()),
    "finished_at": st.none() | st.dates(),
    "episode_count": st.none() | st.integers(0, 2**40),
    "progress_cap": st.none() | st.integers(0, 2**40),
}


@st.composite
def write_values(draw: st.DrawFn) -> dict[str, Any]:
    """Values as a Revenge entry holds them, with up to two replaced by anything at all."""
    values = draw(st.fixed_dictionaries(VALID_WRITE))
    for name in draw(st.lists(st.sampled_from(sorted(VALID_WRITE)), max_size=2, unique=True)):
        values[name] = draw(anything | st.integers(-(2**70), -1))
    return values


@FUZZ
@given(write_values())
def test_write_attributes_are_valid_for_kitsu_or_refused_with_mapping_error(
    values: dict[str, Any],
) -> None:
    try:
        sent = kitsu_entry_attributes(**values)
    except MappingError:
        event("write attributes: refused")
        return
    event("write attributes: built")
    assert sent["status"] in KITSU_STATUSES
    assert isinstance(sent["progress"], int)
    assert sent["progress"] >= 0
    cap = values["episode_count"] or values["progress_cap"]
    if isinstance(cap, int) and cap:
        assert sent["progress"] <= cap
    assert sent["ratingTwenty"] is None or 2 <= sent["ratingTwenty"] <= 20
    assert 0 <= sent["reconsumeCount"] <= 50
    json.dumps(sent, allow_nan=False)


# --- the merge ----------------------------------------------------------------------------------

revenge_entries = st.fixed_dictionaries(
    {
        "status": st.sampled_from(REVENGE_STATUSES),
        "progress": st.integers(0, 2**31 - 1),
        "score": st.none() | st.integers(0, 100),
        "rewatching": st.booleans(),
        "rewatch_count": st.integers(0, 32767),
        "notes": any_text,
        "private": st.booleans(),
        "started_at": st.none() | timestamps,
        "finished_at": st.none() | timestamps,
    }
)
optional_times = st.none() | iso_times
valid_kitsu_entries = st.fixed_dictionaries(
    {
        "type": st.just("libraryEntries"),
        "id": st.integers(1, 2**40).map(str),
        "attributes": st.fixed_dictionaries(
            {
                "status": st.sampled_from(KITSU_STATUSES),
                "progress": st.integers(0, 5000),
                "ratingTwenty": st.none() | st.integers(2, 20),
                "reconsuming": st.booleans(),
                "reconsumeCount": st.integers(0, 50),
                "notes": st.none() | any_text,
                "private": st.booleans(),
                "startedAt": optional_times,
                "finishedAt": optional_times,
                "progressedAt": optional_times,
                "updatedAt": iso_times,
            }
        ),
        "relationships": st.just({"anime": {"data": {"type": "anime", "id": "1"}}}),
    }
)
kitsu_entries = rarely_odd(
    valid_kitsu_entries,
    resource(
        "libraryEntries", payloads.library_entry_attributes(), ENTRY_VALUES, linked=("anime",)
    ),
)
update_times = st.none() | timestamps | st.datetimes(timezones=st.timezones())


def remote_snapshot(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The importer's view of a Kitsu entry: None when it would skip the entry."""
    for item in resources_of({"data": payload}):
        if item.type != "libraryEntries":
            return None
        try:
            return snapshot(library_entry_fields(item))
        except MappingError:
            return None
    return None


@FUZZ
@given(
    kitsu_entry=mostly(kitsu_entries, st.none()),
    revenge_entry=mostly(revenge_entries, st.none()),
    stored=st.none()
    | revenge_entries
    | st.dictionaries(st.sampled_from(SYNCED_FIELDS) | any_text, stored_values),
    direction=rarely_odd(st.sampled_from(tuple(SyncDirection)), any_text),
    local_updated_at=update_times,
    remote_updated_at=update_times,
)
def test_the_merge_settles_any_entry_or_refuses_with_the_projects_errors(
    kitsu_entry: dict[str, Any] | None,
    revenge_entry: dict[str, Any] | None,
    stored: Any,
    direction: str,
    local_updated_at: datetime | None,
    remote_updated_at: datetime | None,
) -> None:
    remote = None if kitsu_entry is None else remote_snapshot(kitsu_entry)
    local = None if revenge_entry is None else snapshot(revenge_entry)
    # The importer reads a stored base as `snapshot(synced_values)`: an object only the sync
    # writes (read-only in admin), here with any JSON under any key, as a damaged row would be.
    try:
        base = None if stored is None else snapshot(stored)
    except MappingError:
        event("merge: stored base refused")
        return
    try:
        result = merge_entry(
            base=base,
            local=local,
            remote=remote,
            direction=direction,
            local_updated_at=local_updated_at,
            remote_updated_at=remote_updated_at,
        )
    except ValueError:
        assert direction not in tuple(SyncDirection) or (local is None and remote is None)
        event("merge: refused (direction or no side)")
        return
    sides = "both sides" if local is not None and remote is not None else "one side"
    event(f"merge: {sides}, {'with' if base else 'no'} base, {direction}")
    if result.conflicts:
        event("merge: conflicts recorded")

    assert set(result.merged) == set(SYNCED_FIELDS)
    assert set(result.to_local) <= set(SYNCED_FIELDS)
    assert set(result.to_remote) <= set(SYNCED_FIELDS)
    for name, value in result.merged.items():
        assert value in [side[name] for side in (local, remote) if side is not None]
    if direction == SyncDirection.IMPORT_ONLY:
        assert result.to_remote == {}
    if direction == SyncDirection.EXPORT_ONLY:
        assert result.to_local == {}
    model_values(result.to_local)
    # What the sync stores: the conflict log and the next base are JSON (jsonb) columns.
    for conflict in result.conflicts:
        json.dumps(conflict.as_record(anime_kitsu_id=1, title="t"), allow_nan=False)
    next_base = base_after(result, base=base, remote=remote)
    if next_base is not None:
        json.dumps(next_base, allow_nan=False)
    if local is not None and remote is not None:
        base_after_write(before=base, local=local, written=remote)
