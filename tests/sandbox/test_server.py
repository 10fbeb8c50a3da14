"""The server as a whole: Django-free import, threads, speed, determinism, command lines."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from werkzeug.test import Client

from kitsu_sync.sandbox import SandboxConfig, create_app, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]


def test_the_sandbox_imports_without_django():
    code = (
        "import sys, kitsu_sync.sandbox, kitsu_sync.sandbox.__main__; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('django'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_serve_in_thread_exposes_urls_and_the_store():
    server = serve_in_thread(SandboxConfig(users=1, entries=5))
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.base_url)
        assert server.api_url == f"{server.base_url}/api/edge"
        assert server.oauth_url == f"{server.base_url}/api/oauth"
        assert len(server.store.entries_by_user[1001]) == 5
        assert requests.get(f"{server.base_url}/__sandbox/health", timeout=10).json() == {
            "status": "ok"
        }
    finally:
        server.shutdown()
    try:
        requests.get(f"{server.base_url}/__sandbox/health", timeout=2)
        still_up = True
    except requests.ConnectionError:
        still_up = False
    assert not still_up


def test_concurrent_clients_are_all_answered(sandbox):
    token = sandbox.login(1)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    urls = [
        f"{sandbox.api_url}/library-entries?filter[user_id]=1001&include=anime&page[limit]=20",
        f"{sandbox.api_url}/anime?page[limit]=20",
        f"{sandbox.api_url}/users?filter[self]=true",
    ] * 20

    def fetch(url: str) -> int:
        return requests.get(url, headers=headers, timeout=20).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(fetch, urls))
    assert statuses == [200] * len(urls)
    assert sandbox.stats()["by_status"]["200"] == len(urls) + 1


def test_a_500_entry_page_with_anime_and_mappings_serialises_fast():
    app = create_app(SandboxConfig(users=1, entries=600))
    client = Client(app)
    token = client.post(
        "/api/oauth/token",
        data={"grant_type": "password", "username": "demo", "password": "demo-password"},
    ).json["access_token"]
    url = "/api/edge/library-entries?filter[user_id]=1001&include=anime.mappings&page[limit]=500"
    headers = {"Authorization": f"Bearer {token}"}
    client.get(url, headers=headers)  # warm the attribute caches
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        timings.append(time.perf_counter() - started)
    assert response.status_code == 200
    assert len(response.json["data"]) == 500
    # About 50 ms on a laptop; the margin absorbs slow CI machines.
    assert min(timings) < 0.2


def test_two_sandboxes_with_the_same_seed_answer_identically(sandbox_factory):
    first = sandbox_factory(SandboxConfig(seed=42))
    second = sandbox_factory(SandboxConfig(seed=42))
    other = sandbox_factory(SandboxConfig(seed=43))
    paths = [
        "/anime?page[limit]=20&page[offset]=40&include=genres,mappings",
        "/library-entries?filter[user_id]=1002&page[limit]=500&include=anime.mappings,user",
        "/trending/anime",
        "/mappings?filter[externalSite]=anidb&page[limit]=20",
    ]

    def body(sandbox, path: str) -> bytes:
        raw = requests.get(f"{sandbox.api_url}{path}", timeout=10).content
        return raw.replace(sandbox.base_url.encode(), b"http://sandbox")

    for path in paths:
        assert body(first, path) == body(second, path)
    assert body(first, paths[1]) != body(other, paths[1])


def wait_for_line(process: subprocess.Popen, pattern: str, deadline: float) -> re.Match:
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r} in {seen!r}")


def run_until_ready(command: list[str], env: dict[str, str]) -> None:
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        match = wait_for_line(
            process, r"Kitsu sandbox running at (http://\S+)", time.monotonic() + 60
        )
        base = match[1]
        assert requests.get(f"{base}/__sandbox/health", timeout=10).ok
        demo = requests.post(
            f"{base}/api/oauth/token",
            data={"grant_type": "password", "username": "demo", "password": "demo-password"},
            timeout=10,
        )
        assert demo.status_code == 200
        rest = process.stdout.readline() + process.stdout.readline() + process.stdout.readline()
        assert "demo@example.test" in rest
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_python_dash_m_runs_a_sandbox_until_interrupted():
    run_until_ready(
        [sys.executable, "-m", "kitsu_sync.sandbox", "--port", "0", "--entries", "10"],
        dict(os.environ),
    )


def test_the_manage_py_command_runs_a_sandbox_until_interrupted():
    env = dict(os.environ, ENV_FILE=str(ROOT / "tests" / "test.env"))
    run_until_ready(
        [sys.executable, "manage.py", "kitsu_sandbox", "--port", "0", "--users", "2",
         "--entries", "10", "--auth-code", "--latency-ms", "0"],
        env,
    )  # fmt: skip


def test_the_command_refuses_a_bad_fault_rule():
    env = dict(os.environ, ENV_FILE=str(ROOT / "tests" / "test.env"))
    result = subprocess.run(
        [sys.executable, "manage.py", "kitsu_sandbox", "--port", "0", "--fault", "{nope"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "--fault" in result.stderr
    assert "Traceback" not in result.stderr
