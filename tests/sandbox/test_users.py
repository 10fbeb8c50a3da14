"""Users: the `self` filter, slug and name filters, and self-only attributes."""

from __future__ import annotations

PRIVATE = {"email", "ratingSystem", "titleLanguagePreference", "sfwFilter", "theme", "timeZone"}


def test_filter_self_returns_an_array_of_the_token_owner(get, token):
    body = get("/users", token(1), **{"filter[self]": "true"}).json()
    assert isinstance(body["data"], list)
    (user,) = body["data"]
    assert (user["id"], user["type"]) == ("1001", "users")
    assert user["attributes"]["name"] == "Demo Watcher"
    assert user["attributes"]["slug"] == "demo"
    assert user["attributes"]["email"] == "demo@example.test"
    assert user["attributes"]["ratingSystem"] in ("simple", "advanced", "regular")
    assert body["meta"] == {"count": 1}


def test_filter_self_without_a_token_is_an_empty_array_not_401(get):
    response = get("/users", **{"filter[self]": "true"})
    assert response.status_code == 200
    assert response.json()["data"] == []


def test_an_unknown_token_is_treated_as_anonymous(get):
    response = get("/users", "not-a-real-token", **{"filter[self]": "true"})
    assert response.status_code == 200
    assert response.json()["data"] == []


def test_self_only_attributes_are_hidden_from_others(get, token):
    own = get("/users/1001", token(1)).json()["data"]["attributes"]
    assert set(own) >= PRIVATE
    for viewer in (None, token(2)):
        other = get("/users/1001", viewer).json()["data"]["attributes"]
        assert not PRIVATE & set(other)
        assert other["name"] == "Demo Watcher"


def test_users_filter_by_slug_and_by_name(get):
    assert [u["id"] for u in get("/users", **{"filter[slug]": "user2"}).json()["data"]] == ["1002"]
    by_name = get("/users", **{"filter[name]": "Demo Watcher"}).json()["data"]
    assert [u["id"] for u in by_name] == ["1001"]


def test_user_library_entries_relationship_links(sandbox, get):
    user = get("/users/1001").json()["data"]
    assert user["relationships"]["libraryEntries"]["links"]["related"] == (
        f"{sandbox.api_url}/users/1001/library-entries"
    )
    related = get("/users/1001/library-entries").json()
    assert related["data"]
    assert all(e["type"] == "libraryEntries" for e in related["data"])
