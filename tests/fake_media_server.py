"""A media server stand-in over real HTTP: the item endpoints Revenge asks for a show's ids.

Jellyfin (`GET /Items/{id}`, `Authorization: MediaBrowser Token="..."`), Emby (`GET
/emby/Users/{user}/Items/{id}`, `X-Emby-Token`) and Plex (`GET /library/metadata/{key}`,
`X-Plex-Token`, JSON when asked with `Accept: application/json`), answering with the items
a test puts in `items`, shaped as those servers answer (docs/resolve.md cites the sources).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

API_KEY = "media-server-api-key"


@dataclass
class FakeMediaServer:
    kind: str  # jellyfin, emby or plex
    url: str = ""
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append(request.full_path)
        return self.answer(request)(environ, start_response)

    def answer(self, request: Request) -> Response:
        if not self._authorised(request):
            return Response("Unauthorized", status=401)
        key = request.path.rstrip("/").rsplit("/", 1)[-1]
        item = self.items.get(key)
        if item is None or not self._routed(request.path):
            return Response("Not Found", status=404)
        body = {"MediaContainer": {"size": 1, "Metadata": [item]}} if self.kind == "plex" else item
        return Response(json.dumps(body), content_type="application/json")

    def _authorised(self, request: Request) -> bool:
        if self.kind == "plex":
            return request.headers.get("X-Plex-Token") == API_KEY
        if self.kind == "emby":
            return request.headers.get("X-Emby-Token") == API_KEY
        return request.headers.get("Authorization") == f'MediaBrowser Token="{API_KEY}"'

    def _routed(self, path: str) -> bool:
        if self.kind == "plex":
            return path.startswith("/library/metadata/")
        if self.kind == "emby":
            return path.startswith("/emby/Users/") and "/Items/" in path
        return path.startswith(("/Items/", "/Users/"))


@contextmanager
def serving(kind: str) -> Iterator[FakeMediaServer]:
    server = FakeMediaServer(kind)
    http = make_server("127.0.0.1", 0, server, threaded=True)
    server.url = f"http://127.0.0.1:{http.server_port}"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        http.shutdown()
        thread.join(timeout=10)


def jellyfin_series(item_id: str, **provider_ids: str) -> dict[str, Any]:
    """A Jellyfin/Emby BaseItemDto of a series (Jellyfin's ids are 32 hex digits, no dashes)."""
    return {
        "Name": "Attack on Titan",
        "ServerId": "f4a6e6b2a9b14ba9a1c6b0f8e5d5c9a1",
        "Id": item_id,
        "Type": "Series",
        "ProviderIds": provider_ids,
    }


def plex_show(rating_key: str, *guids: str) -> dict[str, Any]:
    """A Plex show's metadata item, with its new-style `Guid` list."""
    return {
        "ratingKey": rating_key,
        "key": f"/library/metadata/{rating_key}",
        "guid": "plex://show/5d9c086c46115600200aa2fe",
        "type": "show",
        "title": "Attack on Titan",
        "Guid": [{"id": guid} for guid in guids],
    }
