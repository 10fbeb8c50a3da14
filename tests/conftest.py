"""Fixtures shared by the whole suite (a package's own live in that package's conftest.py).

The Kitsu sandbox, over real HTTP:
- `sandbox_server` (session): one sandbox per test process, with the code grant enabled.
- `sandbox`: the same server, reset (data, stats, faults, throttle, tokens) for this test.
- `sandbox_factory`: extra sandboxes with their own SandboxConfig, stopped after the test.

The product's Kitsu client, aimed at it:
- `kitsu`: `sandbox`, with the product's Kitsu client and OAuth settings pointed at it.
- `kitsu_at`: point the product's client at another sandbox, or at any URL, for this test.
- `code_flow`: `kitsu`, with KITSU_AUTH_FLOW=authorization_code.
- `retry_sleeps`: the waits between attempts the product's client asked for (none is slept).
- `fresh_transport`: the product's process-wide transport rebuilt from this test's settings.

People: `make_user` makes a Revenge user, `link_user` links one to a seeded sandbox user with a
real password grant, and `linked_user` does both.

Recorders and addresses: `sync_requests` (what `request_sync` was asked), `queued_tasks` (sync
tasks sent to the broker), `fake_clock`, `closed_port` and `refused_url`.

Resolution: `datasets` loads both mapping datasets from the test files (tests/mapping_files.py).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.utils import timezone

from kitsu_sync.kitsu_api import Resource
from kitsu_sync.kitsu_client import get_transport
from kitsu_sync.models import AuthFlow, KitsuToken
from kitsu_sync.sandbox import SandboxConfig
from kitsu_sync.services import schedule
from kitsu_sync.services.mapping_data import load_dataset
from kitsu_sync.services.tokens import store_link
from revenge_site.settings import kitsu_socialaccount_providers
from tests import mapping_files
from tests.clocks import FakeClock
from tests.sandbox_handle import SandboxHandle
from tests.sync_support import sandbox_grant

# --- the sandbox --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxHandle]:
    with SandboxHandle.serving(SandboxConfig(auth_code_enabled=True)) as handle:
        yield handle


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., SandboxHandle]]:
    with ExitStack() as started:

        def start(config: SandboxConfig | None = None, **overrides: Any) -> SandboxHandle:
            config = replace(config or SandboxConfig(), **overrides)
            return started.enter_context(SandboxHandle.serving(config))

        yield start


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock to hand to SandboxConfig(clock=...) or a RateLimiter, moved by hand."""
    return FakeClock()


# --- the product's Kitsu client, aimed at a sandbox ---------------------------------------------


@pytest.fixture
def fresh_transport() -> Iterator[None]:
    """The product's process-wide Kitsu transport, rebuilt from this test's settings (and
    dropped again after the test, so that no other test meets it)."""
    get_transport.cache_clear()
    yield
    get_transport.cache_clear()


@pytest.fixture
def retry_sleeps() -> list[float]:
    """Every wait between attempts the product's Kitsu client asked for (none is slept)."""
    return []


@pytest.fixture
def kitsu_at(
    settings: Any, monkeypatch: pytest.MonkeyPatch, retry_sleeps: list[float], fresh_transport: None
) -> Callable[..., Any]:
    """Point the product's Kitsu client at `sandbox` (its URLs and registered OAuth client,
    import only), or only at `api_url` and `oauth_url` (a dead port, say), for this test.

    The client is rebuilt from the settings, with the shared rate limit out of the way and its
    waits between attempts recorded in `retry_sleeps` instead of slept. Returns `sandbox`.
    """

    def point(
        sandbox: Any = None, *, api_url: str | None = None, oauth_url: str | None = None
    ) -> Any:
        if sandbox is not None:
            api_url, oauth_url = sandbox.api_url, sandbox.oauth_url
            settings.KITSU_CLIENT_ID = sandbox.client_id
            settings.KITSU_CLIENT_SECRET = sandbox.client_secret
            settings.SOCIALACCOUNT_PROVIDERS = kitsu_socialaccount_providers(
                client_id=sandbox.client_id,
                client_secret=sandbox.client_secret,
                flow=settings.KITSU_AUTH_FLOW,
            )
            settings.KITSU_SYNC_DIRECTION = "import_only"
        settings.KITSU_API_URL = api_url
        settings.KITSU_OAUTH_URL = oauth_url
        # The shared Redis limiter would pace a test's few hundred writes at 10 per second.
        settings.KITSU_RATE_LIMIT = 10_000
        get_transport.cache_clear()
        monkeypatch.setattr(get_transport(), "_sleep", retry_sleeps.append)
        return sandbox

    return point


@pytest.fixture
def kitsu(sandbox: SandboxHandle, settings: Any, kitsu_at: Callable[..., Any]) -> SandboxHandle:
    """The reset sandbox, with the product's Kitsu client pointed at it (password flow)."""
    settings.KITSU_AUTH_FLOW = "password"
    return kitsu_at(sandbox)


@pytest.fixture
def code_flow(settings: Any, kitsu: SandboxHandle) -> SandboxHandle:
    """`kitsu` with KITSU_AUTH_FLOW=authorization_code (the sandbox allows the code grant)."""
    settings.KITSU_AUTH_FLOW = "authorization_code"
    settings.SOCIALACCOUNT_PROVIDERS = kitsu_socialaccount_providers(
        client_id=kitsu.client_id, client_secret=kitsu.client_secret, flow="authorization_code"
    )
    return kitsu


# --- people -------------------------------------------------------------------------------------


@pytest.fixture
def make_user(django_user_model: Any) -> Callable[..., AbstractBaseUser]:
    """Make a Revenge user (`viewer1`, `viewer2`... unless named), who signs in with `password`."""
    counter = iter(range(1, 10_000))

    def make(username: str | None = None, *, password: str = "revenge-pass-1") -> Any:
        name = username or f"viewer{next(counter)}"
        return django_user_model.objects.create_user(
            name, email=f"{name}@revenge.test", password=password
        )

    return make


@pytest.fixture
def link_user() -> Callable[..., KitsuToken]:
    """Link a Revenge user to seeded user `index` of `sandbox` with a real password grant,
    stored as the product stores a link; `expires_in` moves the token's expiry."""

    def link(
        user: Any, sandbox: Any, index: int = 1, *, expires_in: timedelta | None = None
    ) -> KitsuToken:
        credential = sandbox.credentials(index)
        token = sandbox_grant(sandbox, credential)
        profile = {"slug": credential.slug, "name": credential.name}
        kitsu_user = Resource(type="users", id=credential.user_id, attributes=profile)
        stored = store_link(user=user, token=token, kitsu_user=kitsu_user, flow=AuthFlow.PASSWORD)
        if expires_in is not None:
            KitsuToken.objects.filter(pk=stored.pk).update(
                token_expires_at=timezone.now() + expires_in
            )
            stored.refresh_from_db()
        return stored

    return link


@pytest.fixture
def linked_user(
    request: pytest.FixtureRequest,
    make_user: Callable[..., Any],
    link_user: Callable[..., KitsuToken],
) -> Callable[..., Any]:
    """Make a Revenge user linked to seeded user `index` of `sandbox`, by default of `kitsu`
    (the reset sandbox, with the product pointed at it). Returns the user."""

    def make(username: str | None = None, index: int = 1, *, sandbox: Any = None) -> Any:
        user = make_user(username)
        link_user(user, request.getfixturevalue("kitsu") if sandbox is None else sandbox, index)
        return user

    return make


# --- recorders and addresses --------------------------------------------------------------------


@dataclass
class SyncRequests:
    """What `request_sync` was asked to do (the sync engine itself is not under test here)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    answer: bool = True

    def __call__(self, *, user_id: int, trigger: str, full: bool = False) -> bool:
        self.calls.append({"user_id": user_id, "trigger": trigger, "full": full})
        return self.answer


@pytest.fixture
def sync_requests(monkeypatch: pytest.MonkeyPatch) -> SyncRequests:
    recorder = SyncRequests()
    monkeypatch.setattr(schedule, "request_sync", recorder)
    return recorder


@pytest.fixture
def queued_tasks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The sync tasks sent to the broker (recorded here instead of sent)."""
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr("kitsu_sync.tasks.sync_library.delay", lambda *args: sent.append(args))
    return sent


@pytest.fixture
def deliveries(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Deliveries of the outbox asked of the broker (recorded here instead of sent)."""
    sent: list[tuple[Any, ...]] = []

    def record(args: tuple[Any, ...] = (), kwargs: Any = None, **options: Any) -> None:
        sent.append(tuple(args))

    monkeypatch.setattr("kitsu_sync.tasks.deliver_outbox.apply_async", record)
    return sent


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    """Each test starts with nothing cached (the suite's cache is this process's memory)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def closed_port() -> int:
    """A localhost port with nothing listening on it (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def refused_url(closed_port: int) -> str:
    """A localhost URL on which nothing listens (connections are refused)."""
    return f"http://127.0.0.1:{closed_port}"


# --- which Kitsu anime a media server's show is ---------------------------------------------


@pytest.fixture
def datasets(tmp_path: Path) -> None:
    """Both mapping datasets loaded from the test files (tests/mapping_files.py), and the
    shows' Kitsu anime stored, so that resolving them asks Kitsu nothing."""
    for source, name, body in (
        ("anime-lists", "anime-list-master.xml", mapping_files.ANIME_LISTS),
        ("fribb", "anime-list-full.json", mapping_files.FRIBB),
    ):
        path = tmp_path / name
        path.write_bytes(body)
        result = load_dataset(source, path=path)
        assert result.ok, result.error
    mapping_files.store_shows()
