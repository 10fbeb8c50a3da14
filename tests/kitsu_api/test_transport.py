from __future__ import annotations

import contextlib
import gzip
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from typing import Any

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from kitsu_sync.kitsu_api import (
    DEFAULT_USER_AGENT,
    KitsuBadRequest,
    KitsuClientError,
    KitsuConnectionError,
    KitsuError,
    KitsuForbidden,
    KitsuNotAcceptable,
    KitsuNotFound,
    KitsuRateLimited,
    KitsuResponseError,
    KitsuResponseTooLarge,
    KitsuServerError,
    KitsuTimeout,
    KitsuUnauthorized,
    KitsuUnreachable,
    KitsuUnsupportedMediaType,
    KitsuValidationError,
    RateLimiter,
    RetryPolicy,
    Transport,
)
from tests.clocks import FakeClock, RecordingSleep
from tests.kitsu_api import payloads
from tests.kitsu_api.payloads import ACCESS_TOKEN, API_URL, OAUTH_URL

ANIME_URL = f"{API_URL}/anime/1"
ENTRIES_URL = f"{API_URL}/library-entries"
JSONAPI_HEADERS = {"Content-Type": "application/vnd.api+json"}


def refused() -> requests.ConnectionError:
    """What requests raises when the TCP connection is refused."""
    reason = NewConnectionError(None, "Failed to establish a new connection: Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/api/edge/anime/1", reason))  # type: ignore[arg-type]


def reset_mid_response() -> requests.ConnectionError:
    """What requests raises when the server drops the connection after the request went out."""
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104)))


def add_json(
    mock: responses.RequestsMock, method: str, url: str, body: Any, status: int = 200, **kw: Any
) -> None:
    mock.add(method, url, body=json.dumps(body), status=status, headers=JSONAPI_HEADERS, **kw)


# --- requests as sent -----------------------------------------------------------------------


def test_it_sends_bearer_accept_and_user_agent_on_a_get(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    response = transport.request("GET", "anime/1", token=ACCESS_TOKEN, params={"include": "genres"})

    assert response.status == 200
    assert response.body["data"]["id"] == "1"
    sent = mocked.calls[0].request
    assert sent.url == f"{ANIME_URL}?include=genres"
    assert sent.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert sent.headers["Accept"] == "application/vnd.api+json"
    assert sent.headers["User-Agent"] == DEFAULT_USER_AGENT
    assert DEFAULT_USER_AGENT.startswith("revenge-kitsu-sync/")
    assert "Content-Type" not in sent.headers


def test_it_sends_no_authorization_header_without_a_token(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    transport.request("GET", "anime/1")

    assert "Authorization" not in mocked.calls[0].request.headers


def test_it_sends_jsonapi_content_type_and_body_on_writes(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    add_json(mocked, "PATCH", f"{ENTRIES_URL}/7", payloads.library_entry_document("7"))
    body = {"data": {"type": "libraryEntries", "id": "7", "attributes": {"progress": 4}}}

    transport.request("PATCH", "library-entries/7", token=ACCESS_TOKEN, json_body=body)

    sent = mocked.calls[0].request
    assert sent.headers["Content-Type"] == "application/vnd.api+json"
    assert json.loads(sent.body) == body


def test_it_passes_explicit_connect_and_read_timeouts(
    mocked: responses.RequestsMock, make_transport: Callable[..., Transport]
) -> None:
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    make_transport(timeout=(3.0, 12.0)).request("GET", "anime/1")

    assert mocked.calls[0].request.req_kwargs["timeout"] == (3.0, 12.0)


def test_default_timeouts_are_five_seconds_to_connect_and_thirty_to_read(
    mocked: responses.RequestsMock,
) -> None:
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    Transport(api_url=API_URL, oauth_url=OAUTH_URL).request("GET", "anime/1")

    assert mocked.calls[0].request.req_kwargs["timeout"] == (5.0, 30.0)


def test_it_never_follows_redirects_and_says_where_kitsu_moved(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    mocked.add(
        "POST",
        f"{OAUTH_URL}/token",
        status=301,
        headers={"Location": "https://kitsu.app/api/oauth/token?x=secret-ish"},
    )

    with pytest.raises(KitsuClientError) as caught:
        transport.request("POST", "token", form={"grant_type": "password"}, base="oauth")

    assert caught.value.status == 301
    assert "https://kitsu.app/api/oauth/token" in caught.value.message
    assert "secret-ish" not in caught.value.message
    # A followed redirect would have been a second call (to an unregistered URL).
    assert len(mocked.calls) == 1


def test_it_joins_paths_to_the_oauth_root_and_accepts_plain_json_there(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    mocked.add("GET", f"{OAUTH_URL}/token/info", json={"resource_owner_id": 1})

    response = transport.request("GET", "/token/info", token=ACCESS_TOKEN, base="oauth")

    assert response.body == {"resource_owner_id": 1}
    assert mocked.calls[0].request.headers["Accept"] == "application/json"


def test_it_uses_an_absolute_kitsu_link_as_is(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    next_url = f"{ENTRIES_URL}?filter%5BuserId%5D=1&page%5Blimit%5D=500&page%5Boffset%5D=500"
    add_json(mocked, "GET", next_url, payloads.library_page(offset=500, limit=500, count=501))

    transport.request("GET", next_url, params=None)

    assert mocked.calls[0].request.url == next_url


def test_it_refuses_to_send_a_token_to_a_link_on_another_host(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    with pytest.raises(KitsuResponseError, match=r"another host \(evil\.test\)"):
        transport.request("GET", "https://evil.test/api/edge/anime?page=2", token=ACCESS_TOKEN)

    assert len(mocked.calls) == 0


def test_a_204_has_no_body(mocked: responses.RequestsMock, transport: Transport) -> None:
    mocked.add("DELETE", f"{ENTRIES_URL}/7", status=204)

    response = transport.request("DELETE", "library-entries/7", token=ACCESS_TOKEN)

    assert response.status == 204
    assert response.body is None


# --- every error status maps to its typed error -----------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error_class", "message"),
    [
        (400, payloads.PAGE_LIMIT_ERROR, KitsuBadRequest, "Limit exceeds maximum page size of 20."),
        (400, payloads.NO_FILTER_ERROR, KitsuBadRequest, "No filter provided"),
        (401, payloads.INVALID_TOKEN_ERROR, KitsuUnauthorized, "Invalid token"),
        (403, payloads.FORBIDDEN_ERROR, KitsuForbidden, "You don't have permission to update"),
        (404, payloads.RECORD_NOT_FOUND_ERROR, KitsuNotFound, "could not be found"),
        (404, payloads.ROUTE_NOT_FOUND_ERROR, KitsuNotFound, "Route Not Found"),
        (406, payloads.NOT_ACCEPTABLE_ERROR, KitsuNotAcceptable, "Not acceptable"),
        (415, payloads.UNSUPPORTED_MEDIA_TYPE_ERROR, KitsuUnsupportedMediaType, "Content-Type"),
        (422, payloads.RATING_VALIDATION_ERROR, KitsuValidationError, "rating - must be greater"),
    ],
)
def test_a_client_error_status_raises_its_typed_error_without_retrying(
    mocked: responses.RequestsMock,
    transport: Transport,
    recorded_sleep: RecordingSleep,
    status: int,
    body: dict[str, Any],
    error_class: type[KitsuError],
    message: str,
) -> None:
    add_json(mocked, "GET", ANIME_URL, body, status=status)

    with pytest.raises(error_class) as caught:
        transport.request("GET", "anime/1")

    assert caught.value.status == status
    assert message in caught.value.message
    assert caught.value.retryable is False
    assert transport.requests_made == 1
    assert recorded_sleep.calls == []


def test_a_422_keeps_the_json_pointer_of_the_refused_field(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    add_json(mocked, "PATCH", f"{ENTRIES_URL}/7", payloads.RATING_VALIDATION_ERROR, status=422)

    with pytest.raises(KitsuValidationError) as caught:
        transport.request("PATCH", "library-entries/7", token=ACCESS_TOKEN, json_body={"data": {}})

    # Kitsu names the model column (`rating`), not the attribute that was sent (`ratingTwenty`).
    assert caught.value.errors[0]["source"]["pointer"] == "/data/attributes/rating"


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (500, {"errors": [{"status": "500", "title": "Internal Server Error"}]}, JSONAPI_HEADERS),
        (502, payloads.CLOUDFLARE_502_BODY, {"Content-Type": "text/html"}),
        (503, "", {"Content-Type": "text/plain"}),
    ],
)
def test_a_server_error_is_retried_then_given_up_with_the_last_error(
    mocked: responses.RequestsMock,
    transport: Transport,
    recorded_sleep: RecordingSleep,
    status: int,
    body: Any,
    content_type: dict[str, str],
) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    mocked.add("GET", ANIME_URL, body=text, status=status, headers=content_type)

    with pytest.raises(KitsuServerError) as caught:
        transport.request("GET", "anime/1")

    assert caught.value.status == status
    assert caught.value.retryable is True
    assert "<html>" not in caught.value.message
    assert transport.requests_made == 4
    assert len(mocked.calls) == 4
    assert len(recorded_sleep.calls) == 3


@pytest.mark.parametrize("retry_after", [None, "3"])
def test_a_plain_text_429_raises_rate_limited_with_the_retry_after_it_carries(
    mocked: responses.RequestsMock,
    make_transport: Callable[..., Transport],
    retry_after: str | None,
) -> None:
    headers = {"Content-Type": "text/plain"}
    if retry_after:
        headers["Retry-After"] = retry_after
    mocked.add("GET", ANIME_URL, body=payloads.RACK_ATTACK_BODY, status=429, headers=headers)

    with pytest.raises(KitsuRateLimited) as caught:
        make_transport(retry=RetryPolicy(attempts=1)).request("GET", "anime/1")

    assert caught.value.status == 429
    assert caught.value.retry_after == (float(retry_after) if retry_after else None)


def test_a_graphql_style_json_429_is_rate_limited_too(
    mocked: responses.RequestsMock, make_transport: Callable[..., Transport]
) -> None:
    add_json(mocked, "GET", ANIME_URL, payloads.GRAPHQL_RATE_LIMIT_ERROR, status=429)

    with pytest.raises(KitsuRateLimited):
        make_transport(retry=RetryPolicy(attempts=1)).request("GET", "anime/1")


# --- retries ------------------------------------------------------------------------------------


def test_it_retries_503_then_succeeds(
    mocked: responses.RequestsMock, transport: Transport, recorded_sleep: RecordingSleep
) -> None:
    mocked.add("GET", ANIME_URL, status=503, body="")
    mocked.add("GET", ANIME_URL, status=503, body="")
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    response = transport.request("GET", "anime/1")

    assert response.status == 200
    assert transport.requests_made == 3
    assert len(recorded_sleep.calls) == 2


def test_it_retries_a_429_without_retry_after_on_its_own_backoff(
    mocked: responses.RequestsMock, transport: Transport, recorded_sleep: RecordingSleep
) -> None:
    mocked.add("GET", ANIME_URL, status=429, body=payloads.RACK_ATTACK_BODY)
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    transport.request("GET", "anime/1")

    # The first backoff: 0.5 s plus up to 0.5 s of jitter (RetryPolicy defaults).
    assert len(recorded_sleep.calls) == 1
    assert 0.5 <= recorded_sleep.calls[0] <= 1.0


def test_it_honours_retry_after_seconds(
    mocked: responses.RequestsMock, transport: Transport, recorded_sleep: RecordingSleep
) -> None:
    mocked.add("GET", ANIME_URL, status=429, body="", headers={"Retry-After": "7"})
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    transport.request("GET", "anime/1")

    assert recorded_sleep.calls == [7.0]


def test_it_caps_a_long_retry_after(
    mocked: responses.RequestsMock,
    make_transport: Callable[..., Transport],
    recorded_sleep: RecordingSleep,
) -> None:
    mocked.add("GET", ANIME_URL, status=503, body="", headers={"Retry-After": "3600"})
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    make_transport(retry=RetryPolicy(retry_after_max=20.0)).request("GET", "anime/1")

    assert recorded_sleep.calls == [20.0]


def test_it_understands_retry_after_as_an_http_date(
    mocked: responses.RequestsMock,
    make_transport: Callable[..., Transport],
    recorded_sleep: RecordingSleep,
) -> None:
    clock = FakeClock(now=1_700_000_000.0)
    when = formatdate(clock.now + 12, usegmt=True)
    mocked.add("GET", ANIME_URL, status=429, body="", headers={"Retry-After": when})
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    make_transport(clock=clock.time).request("GET", "anime/1")

    assert recorded_sleep.calls == [12.0]


def test_backoff_grows_exponentially_with_bounded_jitter_and_a_cap(
    mocked: responses.RequestsMock, make_transport: Callable[..., Transport]
) -> None:
    policy = RetryPolicy(attempts=7, backoff=0.5, backoff_max=5.0, jitter=0.25)
    mocked.add("GET", ANIME_URL, status=503, body="")
    runs: list[list[float]] = []
    for _ in range(20):
        sleep = RecordingSleep()
        with pytest.raises(KitsuServerError):
            make_transport(retry=policy, sleep=sleep).request("GET", "anime/1")
        runs.append(sleep.calls)

    for waits in runs:
        assert len(waits) == 6
        for attempt, wait in enumerate(waits, start=1):
            floor = min(0.5 * 2 ** (attempt - 1), 5.0)
            assert floor <= wait <= min(floor + 0.25, 5.0)
    # The jitter is real: twenty runs do not all wait the same first delay.
    assert len({waits[0] for waits in runs}) > 1


def test_it_retries_a_read_timeout_on_a_get(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    mocked.add("GET", ANIME_URL, body=requests.ReadTimeout("read timed out"))
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    assert transport.request("GET", "anime/1").status == 200
    assert transport.requests_made == 2


def test_it_gives_up_on_repeated_timeouts_with_a_typed_timeout(
    mocked: responses.RequestsMock, make_transport: Callable[..., Transport]
) -> None:
    mocked.add("GET", ANIME_URL, body=requests.ReadTimeout("read timed out"))
    transport = make_transport(retry=RetryPolicy(attempts=3))

    with pytest.raises(KitsuTimeout):
        transport.request("GET", "anime/1")

    assert transport.requests_made == 3


def test_it_retries_a_dropped_connection_on_patch_and_delete(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    mocked.add("PATCH", f"{ENTRIES_URL}/7", body=reset_mid_response())
    add_json(mocked, "PATCH", f"{ENTRIES_URL}/7", payloads.library_entry_document("7"))
    mocked.add("DELETE", f"{ENTRIES_URL}/7", body=reset_mid_response())
    mocked.add("DELETE", f"{ENTRIES_URL}/7", status=204)

    transport.request("PATCH", "library-entries/7", token=ACCESS_TOKEN, json_body={"data": {}})
    transport.request("DELETE", "library-entries/7", token=ACCESS_TOKEN)

    assert transport.requests_made == 4


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 503, "body": ""}, id="503"),
        pytest.param({"status": 500, "body": ""}, id="500"),
        pytest.param({"status": 429, "body": payloads.RACK_ATTACK_BODY}, id="429"),
        pytest.param({"body": requests.ReadTimeout("read timed out")}, id="read-timeout"),
        pytest.param({"body": reset_mid_response()}, id="dropped-connection"),
        pytest.param({"status": 201, "body": '{"data": {"id"'}, id="truncated-body"),
    ],
)
def test_it_never_retries_a_post_that_may_have_reached_kitsu(
    mocked: responses.RequestsMock,
    transport: Transport,
    recorded_sleep: RecordingSleep,
    failure: dict[str, Any],
) -> None:
    mocked.add("POST", ENTRIES_URL, **failure)

    with pytest.raises(KitsuError):
        transport.request("POST", "library-entries", token=ACCESS_TOKEN, json_body={"data": {}})

    assert transport.requests_made == 1
    assert len(mocked.calls) == 1
    assert recorded_sleep.calls == []


def test_it_retries_a_post_whose_connection_was_refused(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    mocked.add("POST", ENTRIES_URL, body=refused())
    add_json(mocked, "POST", ENTRIES_URL, payloads.library_entry_document(), status=201)

    response = transport.request(
        "POST", "library-entries", token=ACCESS_TOKEN, json_body={"data": {}}
    )

    assert response.status == 201
    assert transport.requests_made == 2


def test_a_post_to_a_port_nothing_listens_on_is_retried_then_unreachable(
    closed_port: int, make_transport: Callable[..., Transport], recorded_sleep: RecordingSleep
) -> None:
    transport = make_transport(
        api_url=f"http://127.0.0.1:{closed_port}/api/edge",
        oauth_url=f"http://127.0.0.1:{closed_port}/api/oauth",
        retry=RetryPolicy(attempts=3),
    )

    with pytest.raises(KitsuUnreachable) as caught:
        transport.request("POST", "token", form={"grant_type": "password"}, base="oauth")

    assert transport.requests_made == 3
    assert len(recorded_sleep.calls) == 2
    assert caught.value.retryable is True
    assert f"127.0.0.1:{closed_port}" in caught.value.message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections (in the kernel backlog) but never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_a_real_read_timeout_on_a_post_is_not_retried(
    silent_server: int, make_transport: Callable[..., Transport]
) -> None:
    transport = make_transport(
        api_url=f"http://127.0.0.1:{silent_server}/api/edge",
        oauth_url=f"http://127.0.0.1:{silent_server}/api/oauth",
        timeout=(1.0, 0.2),
    )

    with pytest.raises(KitsuTimeout):
        transport.request("POST", "library-entries", token=ACCESS_TOKEN, json_body={"data": {}})

    assert transport.requests_made == 1


def test_a_non_json_success_body_on_a_get_is_retried_then_a_response_error(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    mocked.add("GET", ANIME_URL, body='{"data": {"id": "1", "ty', headers=JSONAPI_HEADERS)

    with pytest.raises(KitsuResponseError) as caught:
        transport.request("GET", "anime/1")

    assert transport.requests_made == 4
    assert "not JSON" in caught.value.message
    assert "/api/edge/anime/1" in caught.value.message


def test_a_truncated_get_body_is_retried_then_succeeds(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    mocked.add("GET", ANIME_URL, body="<html>Just a moment...</html>", status=200)
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    assert transport.request("GET", "anime/1").body["data"]["type"] == "anime"
    assert transport.requests_made == 2


class CountingRateLimiter(RateLimiter):
    """A real (generous) limiter that counts how often a slot was taken."""

    def __init__(self) -> None:
        super().__init__(10_000, key="counting")
        self.acquired = 0

    def acquire(self, timeout: float | None = None) -> None:
        super().acquire(timeout)
        self.acquired += 1


def test_it_takes_a_rate_limiter_slot_before_every_attempt(
    mocked: responses.RequestsMock, make_transport: Callable[..., Transport]
) -> None:
    limiter = CountingRateLimiter()
    transport = make_transport(rate_limiter=limiter)
    mocked.add("GET", ANIME_URL, status=502, body="")
    mocked.add("GET", ANIME_URL, body=requests.ConnectTimeout("connect timed out"))
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    transport.request("GET", "anime/1")

    assert limiter.acquired == 3
    assert transport.requests_made == 3


def test_requests_made_counts_attempts_from_many_threads(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: transport.request("GET", "anime/1"), range(40)))

    assert transport.requests_made == 40


def test_retry_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(backoff=-1)


# --- secrets stay secret ----------------------------------------------------------------------


def test_tokens_never_reach_errors_reprs_or_logs(
    mocked: responses.RequestsMock,
    transport: Transport,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    next_url = f"{ENTRIES_URL}?filter%5BuserId%5D=1&page%5Boffset%5D=500"
    add_json(mocked, "GET", ANIME_URL, payloads.INVALID_TOKEN_ERROR, status=401)
    mocked.add("GET", next_url, status=503, body=f"echo {ACCESS_TOKEN}")
    mocked.add("PATCH", f"{ENTRIES_URL}/7", body=reset_mid_response())
    mocked.add("GET", f"{OAUTH_URL}/token/info", json=payloads.token_body())

    failures: list[KitsuError] = []
    for method, url, base in (("GET", "anime/1", "api"), ("GET", next_url, "api")):
        with pytest.raises(KitsuError) as caught:
            transport.request(method, url, token=ACCESS_TOKEN, base=base)
        failures.append(caught.value)
    with pytest.raises(KitsuConnectionError) as dropped:
        transport.request("PATCH", "library-entries/7", token=ACCESS_TOKEN, json_body={})
    failures.append(dropped.value)
    ok = transport.request("GET", "token/info", token=ACCESS_TOKEN, base="oauth")

    exposed = [str(error) for error in failures] + [repr(error) for error in failures]
    exposed += [repr(ok), repr(transport)]
    exposed += [record.getMessage() for record in caplog.records]
    exposed += [caplog.text]
    assert caplog.records, "the transport should log its requests at DEBUG"
    assert all(ACCESS_TOKEN not in text for text in exposed)
    assert all("Authorization" not in record.getMessage() for record in caplog.records)
    # Query strings never reach the log: only method, path, status and duration.
    assert all("filter" not in record.getMessage() for record in caplog.records)
    assert any("GET /api/edge/anime/1 -> 401" in record.getMessage() for record in caplog.records)


# --- limits of one answer: a deadline for all of it, a cap on its size ------------------------

# Short limits keep these fast: each dripped piece comes well within the read timeout.
READ_TIMEOUT = 1.0
DEADLINE = 0.5
CAP = 64 * 1024


@pytest.fixture
def limited(sandbox: Any, make_transport: Callable[..., Transport]) -> Transport:
    """A transport aimed at the sandbox over real HTTP, with small limits and one attempt."""
    return make_transport(
        api_url=sandbox.api_url,
        oauth_url=sandbox.oauth_url,
        timeout=(READ_TIMEOUT, READ_TIMEOUT),
        deadline=DEADLINE,
        max_response_bytes=CAP,
        retry=RetryPolicy(attempts=1),
    )


def test_an_answer_dripped_past_the_deadline_is_abandoned_at_the_deadline(
    sandbox: Any, limited: Transport
) -> None:
    # 64 bytes every 50 ms: each read is quick, the whole ~5 KB answer would take ~4 s.
    sandbox.set_faults([{"kind": "drip", "size": 64, "seconds": 0.05, "path": "/api/edge/anime"}])
    started = time.monotonic()

    with pytest.raises(KitsuTimeout) as caught:
        limited.request("GET", "anime/1")

    elapsed = time.monotonic() - started
    assert DEADLINE <= elapsed < READ_TIMEOUT, "stopped at the deadline, not at a read timeout"
    assert "deadline" in caught.value.message
    assert caught.value.retryable is True


def test_a_dripped_answer_that_ends_within_the_deadline_is_read_whole(
    sandbox: Any, make_transport: Callable[..., Transport]
) -> None:
    transport = make_transport(api_url=sandbox.api_url, oauth_url=sandbox.oauth_url, deadline=5)
    whole = transport.request("GET", "anime/1").body
    sandbox.set_faults([{"kind": "drip", "size": 1024, "seconds": 0.01, "chunked": True}])

    assert transport.request("GET", "anime/1").body == whole


def test_a_dripped_post_past_the_deadline_is_not_sent_again(
    sandbox: Any, make_transport: Callable[..., Transport]
) -> None:
    transport = make_transport(
        api_url=sandbox.api_url, oauth_url=sandbox.oauth_url, deadline=DEADLINE
    )
    sandbox.set_faults([{"kind": "drip", "size": 8, "seconds": 0.05, "count": None}])

    with pytest.raises(KitsuTimeout):
        transport.request("POST", "token", form={"grant_type": "password"}, base="oauth")

    assert transport.requests_made == 1


def test_a_body_growing_past_the_size_cap_is_refused_while_it_streams(
    sandbox: Any, limited: Transport
) -> None:
    # Valid JSON of 5 MB with no Content-Length: only counting what arrives can stop it.
    sandbox.set_faults([{"kind": "huge", "size": 5_000_000, "chunked": True}])

    with pytest.raises(KitsuResponseError) as caught:
        limited.request("GET", "anime/1")

    assert "grew past the" in caught.value.message
    assert f"{CAP}-byte limit" in caught.value.message
    assert "/api/edge/anime/1" in caught.value.message


def test_a_declared_length_past_the_size_cap_is_refused_before_the_body_is_read(
    sandbox: Any, limited: Transport
) -> None:
    sandbox.set_faults([{"kind": "huge", "size": 8_000_000}])

    with pytest.raises(KitsuResponseError) as caught:
        limited.request("GET", "anime/1")

    assert "is 8000000 bytes, more than the" in caught.value.message
    assert f"{CAP}-byte limit" in caught.value.message


def test_an_answer_past_the_size_cap_is_not_downloaded_again(
    sandbox: Any, make_transport: Callable[..., Transport]
) -> None:
    transport = make_transport(  # the default retry policy: 4 attempts
        api_url=sandbox.api_url, oauth_url=sandbox.oauth_url, max_response_bytes=CAP
    )
    sandbox.set_faults([{"kind": "huge", "size": 8_000_000}])
    before = len(sandbox.requests_log("/api/edge/anime/1"))

    with pytest.raises(KitsuResponseTooLarge):
        transport.request("GET", "anime/1")

    assert len(sandbox.requests_log("/api/edge/anime/1")) == before + 1


def test_an_answer_within_both_limits_is_unaffected_by_them(
    sandbox: Any, make_transport: Callable[..., Transport]
) -> None:
    transport = make_transport(
        api_url=sandbox.api_url, oauth_url=sandbox.oauth_url, max_response_bytes=CAP
    )
    sandbox.set_faults([{"kind": "huge", "size": CAP, "chunked": True}])

    response = transport.request("GET", "anime/1")

    assert response.body["data"] == []
    assert len(response.body["meta"]["padding"]) == CAP - len('{"data":[],"meta":{"padding":""}}')


def test_a_compressed_body_is_capped_at_its_decoded_size(
    mocked: responses.RequestsMock, make_transport: Callable[..., Transport]
) -> None:
    # 4 MB of JSON that gzip makes a few kilobytes: the cap counts what lands in memory.
    document = json.dumps({"data": [], "meta": {"padding": "x" * 4_000_000}}).encode()
    mocked.add(
        "GET",
        ANIME_URL,
        body=gzip.compress(document),
        headers={**JSONAPI_HEADERS, "Content-Encoding": "gzip"},
    )
    transport = make_transport(max_response_bytes=CAP, retry=RetryPolicy(attempts=1))

    with pytest.raises(KitsuResponseError) as caught:
        transport.request("GET", "anime/1")

    assert "grew past the" in caught.value.message


def test_no_timeout_outlasts_the_deadline(
    mocked: responses.RequestsMock, make_transport: Callable[..., Transport]
) -> None:
    add_json(mocked, "GET", ANIME_URL, payloads.cowboy_bebop_document())

    make_transport(timeout=(5.0, 30.0), deadline=2.0).request("GET", "anime/1")

    assert mocked.calls[0].request.req_kwargs["timeout"] == (2.0, 2.0)


def test_the_longest_request_counts_the_limiter_wait_and_deadline_of_every_attempt() -> None:
    policy = RetryPolicy(attempts=4, backoff_max=30.0, retry_after_max=60.0)
    limited = Transport(
        api_url=API_URL,
        oauth_url=OAUTH_URL,
        rate_limiter=RateLimiter(10, key="longest"),
        rate_limit_wait=120.0,
        deadline=60.0,
        retry=policy,
    )
    unlimited = Transport(api_url=API_URL, oauth_url=OAUTH_URL, deadline=60.0, retry=policy)

    assert limited.longest_request == 4 * (120 + 60) + 3 * 60
    assert unlimited.longest_request == 4 * 60 + 3 * 60


def test_the_transport_refuses_limits_that_are_not_positive() -> None:
    with pytest.raises(ValueError, match="deadline"):
        Transport(api_url=API_URL, oauth_url=OAUTH_URL, deadline=0)
    with pytest.raises(ValueError, match="max_response_bytes"):
        Transport(api_url=API_URL, oauth_url=OAUTH_URL, max_response_bytes=0)


def _drip_server(head: bytes, first: bytes, drop: bytes) -> tuple[str, threading.Event]:
    """A one-answer HTTP server that sends `head` and `first`, then `drop` every 50 ms for
    up to 5 s (or until the client hangs up); its address, and an event set when it stops."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopped, pause = threading.Event(), threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        connection.recv(65_536)
        connection.sendall(head + first)
        ends = time.monotonic() + 5
        with contextlib.suppress(OSError):
            while time.monotonic() < ends:
                connection.sendall(drop)
                pause.wait(0.05)  # the drip's pace, not a wait for a result
        connection.close()
        listener.close()
        stopped.set()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", stopped


@pytest.mark.parametrize(
    ("head", "first", "drop"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            b"2\r\n{}\r\n1;",  # then a chunk-size line that never ends
            b"a",
            id="chunk-size line a byte at a time",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Encoding: gzip\r\nConnection: close\r\n\r\n",
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff",  # a gzip header
            b"\x00\x00\x00\xff\xff",  # empty deflate blocks: they decode to nothing
            id="gzip that decodes to nothing",
        ),
    ],
)
def test_an_answer_that_stalls_inside_one_read_is_cut_at_the_deadline(
    make_transport: Callable[..., Transport], head: bytes, first: bytes, drop: bytes
) -> None:
    base, stopped = _drip_server(head, first, drop)
    transport = make_transport(
        api_url=f"{base}/api",
        oauth_url=f"{base}/oauth",
        timeout=(READ_TIMEOUT, READ_TIMEOUT),
        deadline=DEADLINE,
        retry=RetryPolicy(attempts=1),
    )
    started = time.monotonic()

    with pytest.raises(KitsuTimeout, match="deadline"):
        transport.request("GET", "anime/1")

    assert time.monotonic() - started < DEADLINE + READ_TIMEOUT
    assert stopped.wait(5)  # the server saw the client hang up
