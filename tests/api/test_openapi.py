"""The API's description: OpenAPI JSON and its interactive page, generated from the code."""

from __future__ import annotations

from django.test import Client


def test_the_openapi_document_lists_every_endpoint_and_both_key_headers(client: Client) -> None:
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path, method in [
        ("/api/v1/scrobble", "post"),
        ("/api/v1/library", "get"),
        ("/api/v1/library", "post"),
        ("/api/v1/library/{kitsu_anime_id}", "get"),
        ("/api/v1/library/{kitsu_anime_id}", "patch"),
        ("/api/v1/library/{kitsu_anime_id}", "delete"),
        ("/api/v1/anime/search", "get"),
        ("/api/v1/webhooks/jellyfin", "post"),
        ("/api/v1/webhooks/plex", "post"),
        ("/api/v1/webhooks/emby", "post"),
    ]:
        assert method in paths[path], f"{method.upper()} {path}"
    schemes = document["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} >= {"http", "apiKey"}
    assert any(s.get("name") == "X-Api-Key" for s in schemes.values())
    # Each error is described, in its one shape, and the scrobble's Idempotency-Key too.
    responses = paths["/api/v1/scrobble"]["post"]["responses"]
    assert {"200", "400", "401", "422", "500"} <= set(responses)
    problem = responses["422"]["content"]["application/json"]["schema"]["$ref"]
    assert problem.endswith("/ProblemOut")
    headers = [p["name"] for p in paths["/api/v1/scrobble"]["post"]["parameters"]]
    assert "Idempotency-Key" in headers
    assert "404" in paths["/api/v1/library/{kitsu_anime_id}"]["patch"]["responses"]
    scrobble = document["components"]["schemas"]["ScrobbleIn"]["properties"]
    assert {"kitsu_id", "mal_id", "anilist_id", "anidb_id", "tvdb_id", "episode"} <= set(scrobble)


def test_the_interactive_page_is_served_from_this_server(client: Client) -> None:
    response = client.get("/api/v1/docs")

    assert response.status_code == 200
    page = response.content.decode()
    assert "openapi.json" in page
    assert "cdn.jsdelivr.net" not in page, "the page must work without the internet"
