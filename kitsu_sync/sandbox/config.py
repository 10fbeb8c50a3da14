"""Settings of one sandbox: the seed and size of its data, its OAuth client, and its faults."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

# The shared client pair Kitsu's docs publish ("app registration is not implemented"); Mihon,
# trackma and Taiga all send it, so the sandbox accepts it next to its own registered client.
PUBLIC_CLIENT_ID = "dd031b32d2f56c990b1425efe6c42ad847e7fe3ab46bf1299f05ecd856bdb7dd"
PUBLIC_CLIENT_SECRET = "54d7307928f63414defd96399fc31ba847961ceaecef3a5fd93144e960c0e151"

FAULT_KINDS = ("status", "rate_limit", "drop", "slow", "truncate", "html", "drip", "huge")
# A drip fault's piece of the body, and a huge fault's body, when the rule gives no size: the
# huge body is twice the client's default KITSU_MAX_RESPONSE_BYTES (32 MiB).
DRIP_BYTES = 16
HUGE_BYTES = 64 * 1024 * 1024

# Where Kitsu's images live, and where the sandbox serves its own generated ones.
KITSU_MEDIA_HOST = "https://media.kitsu.app"
MEDIA_PATH = "/media"
_MEDIA_PATH_SHAPE = re.compile(r"(/[A-Za-z0-9._~-]+)+")


def check_media_url(value: str | None) -> str | None:
    """None, a path on the sandbox ("/media") or an http(s) URL; without a trailing slash."""
    if value is None:
        return None
    value = value.rstrip("/") if len(value) > 1 else value
    if value.startswith("/"):
        if not _MEDIA_PATH_SHAPE.fullmatch(value) or value.split("/")[1] in ("api", "__sandbox"):
            raise ValueError(
                f"media_url {value!r}: a path on the sandbox looks like /media "
                "(plain segments, not under /api or /__sandbox)"
            )
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            f"media_url {value!r}: use a path such as /media (this sandbox) "
            "or an http(s) URL such as https://media.kitsu.app"
        )
    return value


@dataclass(frozen=True)
class FaultRule:
    """One injected failure.

    It matches requests whose path starts with `path` (and whose method is `method`, when set),
    lets the first `after` of them through, then fires on the next `count` (None: forever).

    `drip` sends the real answer `size` bytes at a time with `seconds` between pieces; `huge`
    streams a valid JSON body of `size` bytes, made as it is sent. Both declare their length
    in Content-Length unless `chunked`, which sends the body chunked, length unknown.
    """

    kind: str
    count: int | None = 1
    after: int = 0
    path: str = "/api/"
    method: str | None = None
    # None: the kind's own status (429 rate_limit, 502 html, 503 status).
    status: int | None = None
    seconds: float = 2.0
    # None: the kind's own size (DRIP_BYTES per piece, HUGE_BYTES in all).
    size: int | None = None
    chunked: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}"
            )
        if self.count is not None and self.count < 0:
            raise ValueError("count must be zero or more, or null for no limit")
        if self.after < 0:
            raise ValueError("after must be zero or more")
        if not self.path.startswith("/"):
            raise ValueError("path must start with /")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")
        if self.seconds < 0:
            raise ValueError("seconds must be zero or more")
        if self.size is not None and self.size < 1:
            raise ValueError("size must be a positive number of bytes")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FaultRule:
        """Build a rule from its JSON form; raises ValueError with a readable message."""
        if not isinstance(raw, Mapping):
            raise ValueError("each fault rule must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown fault rule keys: {', '.join(unknown)}")
        if "kind" not in raw:
            raise ValueError("a fault rule needs a kind")
        if not isinstance(raw.get("chunked", False), bool):
            raise ValueError("chunked must be true or false")
        try:
            return cls(
                kind=str(raw["kind"]),
                count=None if raw.get("count", 1) is None else int(raw.get("count", 1)),
                after=int(raw.get("after", 0)),
                path=str(raw.get("path", "/api/")),
                method=None if raw.get("method") is None else str(raw["method"]).upper(),
                status=None if raw.get("status") is None else int(raw["status"]),
                seconds=float(raw.get("seconds", 2.0)),
                size=None if raw.get("size") is None else int(raw["size"]),
                chunked=raw.get("chunked", False),
            )
        except (TypeError, ValueError) as error:
            raise ValueError(f"invalid fault rule {dict(raw)!r}: {error}") from error

    @property
    def response_status(self) -> int:
        if self.status is not None:
            return self.status
        return {"rate_limit": 429, "html": 502, "huge": 200}.get(self.kind, 503)

    @property
    def body_size(self) -> int:
        """Bytes per piece of a drip, or the whole body of a huge answer."""
        if self.size is not None:
            return self.size
        return HUGE_BYTES if self.kind == "huge" else DRIP_BYTES

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.response_status}


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that decides how a sandbox behaves. Same config, same data, byte for byte."""

    seed: int = 1
    users: int = 3
    # Library entries per user (anime and a few manga).
    entries: int = 60
    # Anime in the catalog; None means max(entries * 2, 200).
    catalog_size: int | None = None
    # Off by default, as on kitsu.app: /oauth/authorize is unusable and the code grant is refused.
    auth_code_enabled: bool = False
    client_id: str = "revenge-demo"
    client_secret: str = "revenge-demo-secret"
    accept_public_client: bool = True
    # Redirect URIs registered for the client; empty accepts any http(s) URI (a sandbox nicety).
    redirect_uris: tuple[str, ...] = ()
    access_token_lifetime: int = 2_592_000
    # Rack::Attack `logins/ip`: password grants per period per client IP (0 turns it off).
    login_throttle_limit: int = 15
    login_throttle_period: int = 60
    latency_ms: float = 0.0
    faults: tuple[FaultRule, ...] = ()
    # The request log is a ring buffer; the counters in `stats` are exact whatever its size.
    request_log_size: int = 200_000
    # Seconds since the epoch; tests inject a fake clock for token expiry and the throttle window.
    clock: Callable[[], float] = field(default=time.time, compare=False)
    log_requests: bool = False
    # Where posterImage, coverImage and avatar URLs point. None: https://media.kitsu.app, as on
    # Kitsu. A path ("/media"): this sandbox, which serves generated images there (a served
    # sandbox puts its own base URL in front). A URL: that host, as is.
    media_url: str | None = None

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError("a sandbox needs at least one user (the demo account)")
        if self.entries < 0:
            raise ValueError("entries must be zero or more")
        if self.catalog_size is not None and self.catalog_size < max(self.entries, 1):
            raise ValueError("catalog_size must be at least the number of entries per user")
        if self.access_token_lifetime <= 0:
            raise ValueError("access_token_lifetime must be positive")
        if self.login_throttle_limit < 0 or self.login_throttle_period <= 0:
            raise ValueError("the login throttle needs a limit >= 0 and a positive period")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be zero or more")
        if self.request_log_size < 1:
            raise ValueError("request_log_size must be positive")
        object.__setattr__(self, "media_url", check_media_url(self.media_url))

    @property
    def anime_count(self) -> int:
        return self.catalog_size if self.catalog_size is not None else max(self.entries * 2, 200)

    @property
    def media_path(self) -> str:
        """Where the sandbox answers image requests: the media_url path, or /media."""
        url = self.media_url
        return url if url is not None and url.startswith("/") else MEDIA_PATH

    @property
    def manga_count(self) -> int:
        return max(self.entries // 4, 20)

    def clients(self) -> dict[str, str]:
        """Registered OAuth clients: client_id -> client_secret."""
        registered = {self.client_id: self.client_secret}
        if self.accept_public_client:
            registered.setdefault(PUBLIC_CLIENT_ID, PUBLIC_CLIENT_SECRET)
        return registered
