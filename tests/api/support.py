"""The HTTP API's tests' client and checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.test import Client


@dataclass
class KeyedClient:
    """Django's test client, sending the key as `Authorization: Bearer` unless told otherwise."""

    client: Client
    user: Any
    key: str

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        key: str | None = None,
    ) -> Any:
        sent = {"Authorization": f"Bearer {self.key if key is None else key}"}
        sent.update(headers or {})
        if key == "":
            sent.pop("Authorization")
        data = json.dumps(body) if body is not None else None
        return getattr(self.client, method)(
            f"/api/v1{path}", data=data, content_type="application/json", headers=sent
        )

    def get(self, path: str, **options: Any) -> Any:
        return self.call("get", path, **options)

    def post(self, path: str, body: Any = None, **options: Any) -> Any:
        return self.call("post", path, body, **options)

    def patch(self, path: str, body: Any = None, **options: Any) -> Any:
        return self.call("patch", path, body, **options)

    def delete(self, path: str, **options: Any) -> Any:
        return self.call("delete", path, **options)


def assert_problem(response: Any, status: int, title_part: str = "") -> dict[str, Any]:
    """The response is problem JSON (RFC 9457) with this status; returns its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert title_part in body["title"]
    assert body["detail"]
    return body
