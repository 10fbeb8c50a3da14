"""API keys, from `Authorization: Bearer`, `X-Api-Key`, or (webhooks only) `?key=`."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import APIKeyHeader, APIKeyQuery, HttpBearer

from kitsu_sync.models import ApiKey
from kitsu_sync.services import api_keys


class BearerKey(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return api_keys.authenticate(token)


class HeaderKey(APIKeyHeader):
    param_name = "X-Api-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return api_keys.authenticate(key) if key else None


class QueryKey(APIKeyQuery):
    """Plex cannot send headers: its webhook URL carries the key (which then shows in the
    server's settings and logs, docs/scrobbling.md)."""

    param_name = "key"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return api_keys.authenticate(key) if key else None


API_KEY_AUTH = [BearerKey(), HeaderKey()]
WEBHOOK_AUTH = [BearerKey(), HeaderKey(), QueryKey()]


def key_of(request: HttpRequest) -> ApiKey:
    return request.auth  # type: ignore[attr-defined,no-any-return]
