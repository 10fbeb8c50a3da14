from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitsu_sync.kitsu_api.errors import KitsuResponseError
from kitsu_sync.kitsu_api.jsonapi import Relationship, ResourceIdentifier, parse_document
from tests.kitsu_api import payloads

# The links-only relationships Kitsu sends with every anime (the sandbox sends the same).
ANIME_LINKS_ONLY = (
    "genres",
    "categories",
    "castings",
    "installments",
    "reviews",
    "mediaRelationships",
    "characters",
    "staff",
    "productions",
    "quotes",
    "episodes",
    "streamingLinks",
    "animeProductions",
    "animeCharacters",
    "animeStaff",
)


def library_page_with_mappings(entries: int) -> dict[str, Any]:
    """A library page as the import reads it (include=anime,anime.mappings): two mappings
    per anime, and the anime's links-only relationships."""
    page = payloads.library_page(offset=0, limit=entries, count=entries)
    mappings = []
    for anime in page["included"]:
        path = f"anime/{anime['id']}"
        ids = [f"{anime['id']}{n:02}" for n in range(2)]
        anime["relationships"] = {
            name: {"links": payloads.relationship_links(payloads.API_URL, path, name)}
            for name in ANIME_LINKS_ONLY
        }
        anime["relationships"]["mappings"] = {
            "links": payloads.relationship_links(payloads.API_URL, path, "mappings"),
            "data": [{"type": "mappings", "id": mapping_id} for mapping_id in ids],
        }
        mappings += [
            payloads.mapping_resource(mapping_id, site, anime["id"])
            for mapping_id, site in zip(ids, ("myanimelist/anime", "anidb"), strict=True)
        ]
    page["included"] += mappings
    return page


def test_it_links_relationships_to_included_resources():
    document = parse_document(payloads.cowboy_bebop_document())
    anime = document.data
    assert anime.type == "anime"
    assert anime.id == "1"
    assert anime.attr("canonicalTitle") == "Cowboy Bebop"
    assert [genre.attr("name") for genre in anime.related("genres")] == ["Action", "Sci-Fi"]


def test_relationships_without_linkage_are_not_loaded():
    anime = parse_document(payloads.cowboy_bebop_document()).data
    categories = anime.relationships["categories"]
    assert categories.loaded is False
    assert categories.links["related"].endswith("/anime/1/categories")
    assert anime.related("categories") is None
    assert anime.related_list("categories") == []


def test_a_library_page_keeps_meta_links_and_the_next_url():
    document = parse_document(payloads.library_page(offset=0, limit=40, count=43))
    assert document.meta["count"] == 43
    assert len(document.resources) == 40
    assert "page%5Boffset%5D=40" in document.next_url
    assert "page%5Boffset%5D=3" in document.links["last"]
    entry = document.resources[0]
    assert entry.type == "libraryEntries"
    assert entry.attr("ratingTwenty") is None
    assert entry.related("anime").id == "1"


def test_the_last_page_has_no_next_url():
    assert parse_document(payloads.library_page(offset=40, limit=40, count=43)).next_url is None


def test_the_mapping_lookup_reaches_the_polymorphic_item():
    document = parse_document(payloads.mapping_lookup_document())
    mapping = document.resources[0]
    assert mapping.attr("externalId") == "21"
    assert mapping.related("item").attr("canonicalTitle") == "One Piece"


def test_linkage_to_a_resource_missing_from_the_document_is_skipped():
    document = parse_document(
        {
            "data": {
                "type": "anime",
                "id": "1",
                "relationships": {
                    "genres": {"data": [{"type": "genres", "id": "9"}]},
                    "mappings": {"data": None},
                },
            }
        }
    )
    assert document.data.related("genres") == []
    assert document.data.related("mappings") is None
    assert document.data.relationships["genres"].data == [ResourceIdentifier("genres", "9")]


def test_an_error_document_parses_with_its_errors():
    document = parse_document(payloads.RECORD_NOT_FOUND_ERROR)
    assert document.data is None
    assert document.errors[0]["title"] == "Record not found"


def test_integer_ids_from_old_payloads_become_strings():
    assert parse_document({"data": {"type": "anime", "id": 7}}).data.id == "7"


def test_a_parsed_library_page_is_freed_without_the_cycle_collector():
    payload = library_page_with_mappings(500)
    gc.collect()
    gc.disable()
    try:
        document = parse_document(payload)
        resources = [*document.resources, *document.included]
        assert len(resources) == 2000
        anime = document.resources[0].related("anime")
        assert [m.attr("externalSite") for m in anime.related_list("mappings")] == [
            "myanimelist/anime",
            "anidb",
        ]
        alive = [weakref.ref(document), *(weakref.ref(resource) for resource in resources)]
        del document, resources, anime

        # Reference counting alone freed every resource of the page.
        assert [ref() for ref in alive if ref() is not None] == []
    finally:
        gc.enable()


def test_related_resources_outlive_their_document():
    entry = parse_document(library_page_with_mappings(3)).resources[1]
    bebop = parse_document(payloads.cowboy_bebop_document()).data
    gc.collect()

    anime = entry.related("anime")
    assert anime.id == "2"
    assert [m.attr("externalId") for m in anime.related_list("mappings")] == ["2", "2"]
    assert [genre.attr("name") for genre in bebop.related_list("genres")] == ["Action", "Sci-Fi"]


def test_a_cycle_in_the_data_links_both_ways():
    document = parse_document(
        {
            "data": {
                "type": "anime",
                "id": "1",
                "relationships": {"sequel": {"data": {"type": "anime", "id": "2"}}},
            },
            "included": [
                {
                    "type": "anime",
                    "id": "2",
                    "relationships": {"prequel": {"data": {"type": "anime", "id": "1"}}},
                }
            ],
        }
    )
    first = document.data
    assert first.related("sequel").related("prequel") is first


def test_links_only_relationships_read_like_a_dict_of_relationships():
    anime = parse_document(library_page_with_mappings(1)).included[0]
    relationships = anime.relationships

    assert list(relationships) == [*ANIME_LINKS_ONLY, "mappings"]
    assert len(relationships) == 16
    assert "episodes" in relationships
    assert "nonsense" not in relationships
    assert relationships.get("nonsense") is None
    episodes = relationships["episodes"]
    assert episodes is relationships["episodes"]
    assert episodes == Relationship(
        links=payloads.relationship_links(payloads.API_URL, "anime/1", "episodes")
    )
    assert (episodes.loaded, episodes.data) == (False, None)
    assert dict(relationships)["mappings"].loaded is True
    assert relationships == dict(relationships.items())
    assert anime.related("episodes") is None


def test_a_null_relationship_is_an_unloaded_one():
    anime = parse_document({"data": {"type": "anime", "id": "1", "relationships": {"x": None}}})
    assert anime.data.relationships["x"] == Relationship(links={}, loaded=False)
    assert anime.data.related_list("x") == []


def test_a_malformed_relationship_is_reported_with_where_it_is():
    payload = payloads.cowboy_bebop_document()
    payload["included"].append(
        {"type": "genres", "id": "2", "relationships": {"anime": {"links": ["nope"]}}}
    )
    with pytest.raises(KitsuResponseError, match=r"included\[2\]\.relationships\.anime\.links"):
        parse_document(payload)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "Retry later\n",
        {},
        {"data": {"id": "1"}},
        {"data": {"type": "anime", "id": None}},
        {"data": {"type": "anime", "id": True}},
        {"data": {"type": "anime", "id": "1", "attributes": []}},
        {"data": {"type": "anime", "id": "1", "relationships": {"x": {"data": [1]}}}},
        {"data": {"type": "anime", "id": "1", "relationships": {"x": "nope"}}},
        {"data": {"type": "anime", "id": "1", "relationships": {"x": {"links": []}}}},
        {"data": {"type": "anime", "id": "1", "relationships": []}},
        {"data": {"type": "anime", "id": "1", "relationships": {"x": {"data": {"id": "2"}}}}},
        {"data": [{"type": "anime", "id": "1", "meta": "x"}]},
        {"data": [], "included": {}},
        {"errors": "broken"},
    ],
)
def test_malformed_documents_raise_the_projects_own_error(payload: Any):
    with pytest.raises(KitsuResponseError, match="Malformed JSON:API"):
        parse_document(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "data",
                    "type",
                    "id",
                    "attributes",
                    "relationships",
                    "included",
                    "links",
                    "meta",
                    "errors",
                    "anime",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_parses_or_raises_only_the_projects_error(payload: Any):
    try:
        document = parse_document(payload)
    except KitsuResponseError:
        return
    for resource in [*document.resources, *document.included]:
        for name in resource.relationships:
            resource.related(name)
            resource.related_list(name)
