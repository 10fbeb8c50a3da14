from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitsu_sync.kitsu_api.errors import KitsuResponseError
from kitsu_sync.kitsu_api.jsonapi import ResourceIdentifier, parse_document
from tests.kitsu_api import payloads


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
