"""Control endpoints under /__sandbox/: stats, request log, reset, faults, latency, tokens.

They are never counted and never faulted, so tests can always reach them.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from werkzeug.wrappers import Request, Response

from kitsu_sync.sandbox.config import FaultRule
from kitsu_sync.sandbox.store import SandboxStore

CONTROL = "/__sandbox"
RESET_OPTIONS = ("data", "stats", "faults", "throttle", "tokens", "latency")


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def answer(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")


class ControlApi:
    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self.routes = {
            ("GET", "/health"): self.health,
            ("GET", "/config"): self.config,
            ("GET", "/users"): self.users,
            ("GET", "/stats"): self.stats,
            ("GET", "/requests"): self.requests,
            ("POST", "/reset"): self.reset,
            ("GET", "/faults"): self.faults,
            ("POST", "/faults"): self.set_faults,
            ("DELETE", "/faults"): self.clear_faults,
            ("POST", "/latency"): self.latency,
            ("POST", "/tokens/revoke"): self.revoke_tokens,
            ("POST", "/tokens/expire"): self.expire_tokens,
        }

    def __call__(self, request: Request) -> Response:
        route = self.routes.get((request.method, request.path[len(CONTROL) :].rstrip("/")))
        if route is None:
            return answer({"error": f"no control endpoint {request.method} {request.path}"}, 404)
        try:
            return route(request)
        except ControlError as error:
            return answer({"error": str(error)}, error.status)

    @staticmethod
    def body(request: Request) -> Any:
        text = request.get_data(as_text=True)
        if not text.strip():
            return {}
        try:
            return json.loads(text)
        except ValueError as error:
            raise ControlError(f"the body is not JSON: {error}") from None

    def health(self, request: Request) -> Response:
        return answer({"status": "ok"})

    def config(self, request: Request) -> Response:
        config = self.store.config
        return answer(
            {
                "seed": config.seed,
                "users": config.users,
                "entries": config.entries,
                "catalog_size": config.anime_count,
                "auth_code_enabled": config.auth_code_enabled,
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "access_token_lifetime": config.access_token_lifetime,
                "latency_ms": self.store.latency_ms,
                "media_url": self.store.media_host,
            }
        )

    def users(self, request: Request) -> Response:
        return answer([{**asdict(c), "login": c.login} for c in self.store.credentials()])

    def stats(self, request: Request) -> Response:
        return answer(self.store.log.stats())

    def requests(self, request: Request) -> Response:
        limit = request.args.get("limit")
        if limit is not None and not limit.isdigit():
            raise ControlError("limit must be a whole number")
        rows = self.store.log.requests(
            path=request.args.get("path"), limit=None if limit is None else int(limit)
        )
        return answer(rows)

    def reset(self, request: Request) -> Response:
        options = self.body(request)
        if not isinstance(options, dict):
            raise ControlError("reset options must be a JSON object")
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ControlError(f"unknown reset options: {', '.join(unknown)}")
        chosen = {name: bool(options.get(name, True)) for name in RESET_OPTIONS}
        self.store.reset(**chosen)
        return answer({"reset": [name for name, value in chosen.items() if value]})

    def faults(self, request: Request) -> Response:
        return answer(self.store.faults.describe())

    def set_faults(self, request: Request) -> Response:
        raw = self.body(request)
        if isinstance(raw, dict):
            raw = raw.get("rules", [raw] if "kind" in raw else [])
        if not isinstance(raw, list):
            raise ControlError("send a JSON list of fault rules")
        try:
            rules = [FaultRule.from_dict(item) for item in raw]
        except ValueError as error:
            raise ControlError(str(error)) from None
        self.store.faults.set_rules(rules)
        return answer(self.store.faults.describe())

    def clear_faults(self, request: Request) -> Response:
        self.store.faults.set_rules(())
        return answer([])

    def latency(self, request: Request) -> Response:
        body = self.body(request)
        value = body.get("ms") if isinstance(body, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ControlError('send {"ms": <milliseconds, zero or more>}')
        self.store.latency_ms = float(value)
        return answer({"ms": self.store.latency_ms})

    def user_id(self, request: Request) -> int:
        body = self.body(request)
        raw = body.get("user_id") if isinstance(body, dict) else None
        if raw is None or not str(raw).isdigit():
            raise ControlError('send {"user_id": "<Kitsu user id>"}')
        if self.store.user_by_id(int(raw)) is None:
            raise ControlError(f"no user {raw}", 404)
        return int(raw)

    def revoke_tokens(self, request: Request) -> Response:
        return answer({"revoked": self.store.tokens.revoke_user(self.user_id(request))})

    def expire_tokens(self, request: Request) -> Response:
        return answer({"expired": self.store.tokens.expire_user(self.user_id(request))})
