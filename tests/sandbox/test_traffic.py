"""Fault injection, latency and the request counter, all driven through /__sandbox/."""

from __future__ import annotations

import json
import time
import tracemalloc
from urllib.parse import unquote

import pytest
import requests

from kitsu_sync.sandbox import FaultRule, SandboxConfig


def anime(sandbox, **kwargs) -> requests.Response:
    return requests.get(f"{sandbox.api_url}/anime/1", timeout=10, **kwargs)


def test_a_status_fault_fires_count_times_then_clears(sandbox):
    sandbox.set_faults([{"kind": "status", "status": 503, "count": 2}])
    first, second, third = (anime(sandbox) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.json() == {"errors": [{"title": "Service Unavailable", "status": "503"}]}


def test_a_rate_limit_fault_looks_like_rack_attack(sandbox):
    sandbox.set_faults([{"kind": "rate_limit"}])
    response = anime(sandbox)
    assert response.status_code == 429
    assert response.headers["Content-Type"] == "text/plain"
    assert response.text == "Retry later\n"
    assert "Retry-After" not in response.headers


def test_a_drop_fault_closes_the_connection_without_an_answer(sandbox):
    sandbox.set_faults([{"kind": "drop"}])
    with pytest.raises(requests.ConnectionError):
        anime(sandbox)
    assert anime(sandbox).status_code == 200
    assert sandbox.stats()["by_status"]["0"] == 1


def test_a_slow_fault_delays_the_answer(sandbox):
    sandbox.set_faults([{"kind": "slow", "seconds": 0.3}])
    started = time.monotonic()
    assert anime(sandbox).status_code == 200
    assert time.monotonic() - started >= 0.3
    sandbox.set_faults([{"kind": "slow", "seconds": 1}])
    with pytest.raises(requests.Timeout):
        requests.get(f"{sandbox.api_url}/anime/1", timeout=0.2)


def test_a_truncate_fault_cuts_the_json_in_half(sandbox):
    whole = anime(sandbox).content
    sandbox.set_faults([{"kind": "truncate"}])
    response = anime(sandbox)
    assert response.status_code == 200
    assert response.content == whole[: len(whole) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_an_html_fault_is_a_cloudflare_502_page(sandbox):
    sandbox.set_faults([{"kind": "html"}])
    response = anime(sandbox)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Cloudflare" in response.text


def test_after_lets_requests_through_to_hit_the_middle_of_an_import(sandbox, token):
    headers = {"Authorization": f"Bearer {token(1)}"}
    sandbox.set_faults(
        [{"kind": "status", "status": 500, "after": 2, "path": "/api/edge/library-entries"}]
    )
    url = f"{sandbox.api_url}/library-entries?filter[user_id]=1001&page[limit]=10"
    statuses = []
    for _ in range(4):
        response = requests.get(url, headers=headers, timeout=10)
        statuses.append(response.status_code)
        if response.ok:
            url = response.json()["links"].get("next", url)
    assert statuses == [200, 200, 500, 200]
    assert anime(sandbox).status_code == 200  # other paths are untouched


def test_method_limits_a_rule(sandbox):
    sandbox.set_faults([{"kind": "status", "method": "POST", "count": None}])
    assert anime(sandbox).status_code == 200
    login = requests.post(
        f"{sandbox.oauth_url}/token",
        data={"grant_type": "password", "username": "demo", "password": "demo-password"},
        timeout=10,
    )
    assert login.status_code == 503


def test_control_endpoints_are_never_faulted_or_counted(sandbox):
    sandbox.set_faults([{"kind": "status", "path": "/", "count": None}])
    assert sandbox.stats()["total"] == 0
    assert anime(sandbox).status_code == 503
    described = sandbox.control("GET", "faults")
    assert described[0]["fired"] == 1
    assert sandbox.stats()["total"] == 1


def test_invalid_fault_rules_are_refused(sandbox):
    response = requests.post(
        f"{sandbox.base_url}/__sandbox/faults", json=[{"kind": "explode"}], timeout=10
    )
    assert response.status_code == 400
    assert "unknown fault kind" in response.json()["error"]


def test_faults_can_be_configured_at_start(sandbox_factory):
    sandbox = sandbox_factory(
        SandboxConfig(faults=(FaultRule(kind="status", status=500, path="/api/edge/anime"),))
    )
    assert anime(sandbox).status_code == 500
    assert anime(sandbox).status_code == 200
    sandbox.reset()  # reset restores the configured faults
    assert anime(sandbox).status_code == 500


def test_latency_delays_api_answers_but_not_control_ones(sandbox):
    sandbox.set_latency(250)
    started = time.monotonic()
    assert anime(sandbox).ok
    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    sandbox.stats()
    assert time.monotonic() - started < 0.25


def test_the_counter_groups_requests_by_route_and_status(sandbox):
    anime(sandbox)
    requests.get(f"{sandbox.api_url}/anime/12", timeout=10)
    requests.get(f"{sandbox.api_url}/library-entries?filter[user_id]=1001", timeout=10)
    requests.get(f"{sandbox.api_url}/library-entries", timeout=10)
    requests.get(f"{sandbox.api_url}/nowhere", timeout=10)
    stats = sandbox.stats()
    assert stats["total"] == 5
    assert stats["by_route"] == {
        "GET /api/edge/anime/:id": 2,
        "GET /api/edge/library-entries": 2,
        "GET /api/edge/nowhere": 1,
    }
    assert stats["by_status"] == {"200": 3, "400": 1, "404": 1}


def test_the_request_log_records_each_request(sandbox):
    before = time.time()
    requests.get(f"{sandbox.api_url}/anime?page[limit]=2", timeout=10)
    (entry,) = sandbox.requests_log()
    assert entry["method"] == "GET"
    assert entry["path"] == "/api/edge/anime"
    assert unquote(entry["query"]) == "page[limit]=2"
    assert entry["status"] == 200
    assert before <= entry["t"] <= time.time()
    assert sandbox.requests_log(path="/api/oauth") == []


def test_reset_clears_stats_and_faults(sandbox):
    sandbox.set_faults([{"kind": "status", "count": None}])
    anime(sandbox)
    sandbox.reset()
    assert sandbox.stats()["total"] == 0
    assert anime(sandbox).status_code == 200


def test_unknown_control_endpoints_are_404(sandbox):
    response = requests.get(f"{sandbox.base_url}/__sandbox/nothing", timeout=10)
    assert response.status_code == 404


def test_seeded_users_are_listed_for_tests_and_demos(sandbox):
    users = sandbox.control("GET", "users")
    assert users[0] == {
        "index": 1,
        "user_id": "1001",
        "slug": "demo",
        "name": "Demo Watcher",
        "email": "demo@example.test",
        "password": "demo-password",
        "login": "demo@example.test",
    }
    assert len(users) == sandbox.config.users


def read_pieces(response: requests.Response) -> list[bytes]:
    """The body as the reads that returned it (each read returns what has arrived)."""
    pieces = []
    while piece := response.raw.read1(65_536):
        pieces.append(piece)
    return pieces


def test_a_drip_fault_sends_the_same_answer_a_few_bytes_at_a_time(sandbox):
    whole = anime(sandbox).content
    sandbox.set_faults([{"kind": "drip", "size": 1024, "seconds": 0.05}])
    started = time.monotonic()

    response = anime(sandbox, stream=True)
    pieces = read_pieces(response)

    assert b"".join(pieces) == whole
    assert response.headers["Content-Length"] == str(len(whole))
    # Pieces that came while the reader was busy may share a read; the pauses are all there.
    assert len(pieces) > 1
    assert time.monotonic() - started >= (-(-len(whole) // 1024) - 1) * 0.05


def test_a_chunked_drip_fault_declares_no_length(sandbox):
    whole = anime(sandbox).content
    sandbox.set_faults([{"kind": "drip", "size": 2048, "seconds": 0.01, "chunked": True}])

    response = anime(sandbox)

    assert response.content == whole
    assert "Content-Length" not in response.headers
    assert response.headers["Transfer-Encoding"] == "chunked"


def test_a_huge_fault_is_a_valid_json_body_of_the_size_asked(sandbox):
    sandbox.set_faults([{"kind": "huge", "size": 3_000_000}])

    response = anime(sandbox)

    assert response.status_code == 200
    assert response.headers["Content-Length"] == "3000000"
    assert response.headers["Content-Type"] == "application/vnd.api+json"
    assert len(response.content) == 3_000_000
    assert response.json()["data"] == []


def test_a_chunked_huge_fault_declares_no_length(sandbox):
    sandbox.set_faults([{"kind": "huge", "size": 200_000, "chunked": True}])

    response = anime(sandbox)

    assert "Content-Length" not in response.headers
    assert len(response.content) == 200_000


def test_a_huge_fault_is_made_while_it_is_sent_not_in_memory(sandbox):
    # A gigabyte: its first megabyte is sent before the rest exists (the sandbox serves from
    # this process, so its allocations are traced too).
    sandbox.set_faults([{"kind": "huge", "size": 2**30}])
    tracemalloc.start()
    try:
        with anime(sandbox, stream=True) as response:
            assert response.headers["Content-Length"] == str(2**30)
            first = response.raw.read(1_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert first.startswith(b'{"data":[],"meta":{"padding":"xxx')
    assert len(first) == 1_000_000
    assert peak < 20 * 1024 * 1024


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"kind": "huge", "size": 0}, "size must be a positive number of bytes"),
        ({"kind": "drip", "chunked": "yes"}, "chunked must be true or false"),
    ],
)
def test_drip_and_huge_rules_with_a_bad_size_or_chunked_are_refused(sandbox, rule, error):
    response = requests.post(f"{sandbox.base_url}/__sandbox/faults", json=[rule], timeout=10)
    assert response.status_code == 400
    assert error in response.json()["error"]


def test_drip_and_huge_rules_describe_their_size(sandbox):
    described = sandbox.set_faults([{"kind": "drip"}, {"kind": "huge", "chunked": True}])
    assert [(rule["kind"], rule["size"], rule["chunked"]) for rule in described] == [
        ("drip", None, False),
        ("huge", None, True),
    ]
    assert described[1]["status"] == 200
