"""What the benchmarks share: their own database, a sandbox over real HTTP, linked users,
real Celery workers, and counters for Kitsu requests, SQL round trips and rows written.

The benchmarks drive the product's own services (`run_sync`, the Celery tasks, the beat
dispatcher) exactly as a worker or a command would; nothing here special-cases the sandbox.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from psycopg import sql

from kitsu_sync.kitsu_api import Transport, password_grant
from kitsu_sync.kitsu_client import get_transport
from kitsu_sync.models import (
    Anime,
    AuthFlow,
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    SyncRun,
)
from kitsu_sync.sandbox import SandboxConfig, SandboxServer, serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "var" / "bench"
HTTP_TIMEOUT = 60
# Kitsu's LibraryPaginator maximum (KITSU_API.md 4.3), the page size the import asks for.
PAGE_SIZE = 500
LIBRARY_ROUTE = "GET /api/edge/library-entries"
CONTROL_PREFIX = "/__sandbox"
# Benchmarks empty their database: only one made for them (or a test database) will do.
SCRATCH_DATABASE = re.compile(r"bench|^test_")
WRITE_STATEMENT = re.compile(r'\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)


# --- database ---------------------------------------------------------------------------------


def database_name() -> str:
    return str(connection.settings_dict["NAME"])


def database_url() -> str:
    """The URL of the database this process uses, for the processes it starts."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def _require_scratch_database() -> None:
    if connection.vendor != "postgresql":
        raise SystemExit(
            "The benchmarks measure PostgreSQL: set DATABASE_URL to a postgres:// URL."
        )
    if not SCRATCH_DATABASE.search(database_name()):
        raise SystemExit(
            f"Refusing to use database {database_name()!r}: the benchmarks empty their "
            "database, so its name must contain 'bench' (see bench/bench.env)."
        )


def prepare_database() -> None:
    """Create the benchmarks' database when it is missing, and migrate it."""
    _require_scratch_database()
    db = connection.settings_dict
    with psycopg.connect(
        dbname="postgres",
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        autocommit=True,
    ) as admin:
        found = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
        ).fetchone()
        if found is None:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        # Held by this connection until the process ends: two benchmarks on one database
        # would empty each other's tables.
        cursor.execute("SELECT pg_try_advisory_lock(hashtext('kitsu-sync-bench'))")
        if not cursor.fetchone()[0]:
            raise SystemExit(
                f"Another benchmark is using database {database_name()!r}: run one at a time."
            )


def empty_tables() -> None:
    """Remove every user, link, sync record, library entry and anime (TRUNCATE: instant)."""
    _require_scratch_database()
    models = (LibraryEntry, SyncRun, KitsuSyncState, KitsuToken, Anime, get_user_model())
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


# --- counting ---------------------------------------------------------------------------------


@dataclass
class SqlCount:
    """What this process's default connection sent to the database while counting."""

    statements: int = 0
    # Outermost transactions committed or rolled back: each costs a BEGIN and an end, two
    # round trips that Django does not pass through execute_wrapper.
    transactions: int = 0
    # "UPDATE kitsu_sync_libraryentry" -> rows changed.
    rows_written: Counter[str] = field(default_factory=Counter)

    @property
    def round_trips(self) -> int:
        return self.statements + 2 * self.transactions

    def rows_written_to(self, table: str) -> int:
        return sum(rows for key, rows in self.rows_written.items() if key.split()[-1] == table)

    def __call__(
        self, execute: Callable[..., Any], statement: str, params: Any, many: bool, context: Any
    ) -> Any:
        result = execute(statement, params, many, context)
        self.statements += 1
        match = WRITE_STATEMENT.match(statement)
        if match is not None:
            verb = match[1].split()[0].upper()
            self.rows_written[f"{verb} {match[2]}"] += max(context["cursor"].rowcount, 0)
        return result


@contextmanager
def counting_sql() -> Iterator[SqlCount]:
    count = SqlCount()

    def counted(end: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            count.transactions += 1
            end()

        return run

    connection.commit = counted(connection.commit)
    connection.rollback = counted(connection.rollback)
    try:
        with connection.execute_wrapper(count):
            yield count
    finally:
        del connection.commit
        del connection.rollback


@dataclass
class Traffic:
    """Requests the sandbox answered over a stretch of benchmark (its own counters)."""

    total: int = 0
    by_route: dict[str, int] = field(default_factory=dict)

    def to(self, route: str) -> int:
        return self.by_route.get(route, 0)


def peak_rss_mb() -> float:
    """This process's resident-set high-water mark, in MiB (VmHWM, Linux).

    Not getrusage's ru_maxrss: Linux carries that across exec, so a process started by a big
    parent reports the parent's peak (this one holds the sandbox).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line: the benchmarks need Linux.")


# --- the sandbox ------------------------------------------------------------------------------


def library_size_for(anime_entries: int) -> int:
    """The SandboxConfig.entries that seeds exactly this many anime entries per user.

    The seed mixes one manga entry into every twelve (sandbox/seed.py `build_library`), and the
    import lists anime only (filter[kind]=anime).
    """
    total = anime_entries
    while total - (total // 12 if total >= 12 else int(total >= 6)) < anime_entries:
        total += 1
    return total


class ArrivalLog:
    """WSGI middleware around the sandbox: when each Kitsu request reached it.

    The sandbox's own log stamps a request when its answer leaves, after the handling time;
    the rate a limiter lets through is seen best on arrival.
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.times: list[float] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX):
            self.times.append(time.time())  # list.append is atomic: no lock needed
        return self.app(environ, start_response)


class Sandbox:
    """A sandbox served from this process's threads, driven through /__sandbox/ over HTTP."""

    def __init__(self, config: SandboxConfig) -> None:
        self.server: SandboxServer = serve_in_thread(config)
        self.arrivals = ArrivalLog(self.server.server.app)
        self.server.server.app = self.arrivals
        self.http = requests.Session()

    @property
    def api_url(self) -> str:
        return self.server.api_url

    @property
    def oauth_url(self) -> str:
        return self.server.oauth_url

    @property
    def config(self) -> SandboxConfig:
        return self.server.config

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        response = self.http.request(
            method,
            f"{self.server.base_url}/__sandbox/{path}",
            json=payload,
            timeout=HTTP_TIMEOUT,
        )
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "stats")

    def request_log(self) -> list[dict[str, Any]]:
        """Every request answered since the stats were cleared: `t` is when the answer left."""
        return self.control("GET", "requests")

    def clear_stats(self) -> None:
        keep = ("data", "faults", "throttle", "tokens", "latency")
        self.control("POST", "reset", {"stats": True, **dict.fromkeys(keep, False)})
        self.arrivals.times.clear()

    def set_latency(self, ms: float) -> None:
        self.control("POST", "latency", {"ms": ms})

    def credentials(self) -> list[dict[str, Any]]:
        return self.control("GET", "users")

    @contextmanager
    def counting(self) -> Iterator[Traffic]:
        """The requests answered inside the block, from the sandbox's counters."""
        before = self.stats()
        traffic = Traffic()
        yield traffic
        after = self.stats()
        traffic.total = after["total"] - before["total"]
        traffic.by_route = {
            route: count - before["by_route"].get(route, 0)
            for route, count in after["by_route"].items()
            if count != before["by_route"].get(route, 0)
        }

    def close(self) -> None:
        self.http.close()
        self.server.shutdown()


@contextmanager
def running_sandbox(config: SandboxConfig) -> Iterator[Sandbox]:
    sandbox = Sandbox(config)
    try:
        yield sandbox
    finally:
        sandbox.close()


def product_environment(sandbox: Sandbox, *, rate_limit: float) -> dict[str, str]:
    """Settings, as environment variables, that point another process at this sandbox."""
    return {
        "DATABASE_URL": database_url(),
        "REDIS_URL": django_settings.REDIS_URL,
        "KITSU_API_URL": sandbox.api_url,
        "KITSU_OAUTH_URL": sandbox.oauth_url,
        "KITSU_CLIENT_ID": sandbox.config.client_id,
        "KITSU_CLIENT_SECRET": sandbox.config.client_secret,
        "KITSU_RATE_LIMIT": str(rate_limit),
        "KITSU_SYNC_DIRECTION": django_settings.KITSU_SYNC_DIRECTION,
    }


def use_sandbox(sandbox: Sandbox, *, rate_limit: float, settings: Any = django_settings) -> None:
    """Point this process's Kitsu client at the sandbox (`settings`: pytest's, in tests)."""
    settings.KITSU_API_URL = sandbox.api_url
    settings.KITSU_OAUTH_URL = sandbox.oauth_url
    settings.KITSU_CLIENT_ID = sandbox.config.client_id
    settings.KITSU_CLIENT_SECRET = sandbox.config.client_secret
    settings.KITSU_RATE_LIMIT = rate_limit
    get_transport.cache_clear()


# --- linked users -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkedUser:
    user_id: int
    kitsu_user_id: str
    access_token: str = field(repr=False)


def link_users(sandbox: Sandbox, count: int) -> list[LinkedUser]:
    """Revenge users bench1..benchN, linked to seeded sandbox users 1..N by real password
    grants (raise the sandbox's login_throttle_limit for more than 15 a minute)."""
    transport = Transport(api_url=sandbox.api_url, oauth_url=sandbox.oauth_url)
    grants = []
    for credential in sandbox.credentials()[:count]:
        token = password_grant(
            transport,
            username=credential["email"],
            password=credential["password"],
            client_id=sandbox.config.client_id,
            client_secret=sandbox.config.client_secret,
        )
        grants.append((credential, token))
    unusable = make_password(None)
    users = get_user_model().objects.bulk_create(
        get_user_model()(
            username=f"bench{credential['index']}",
            email=f"bench{credential['index']}@revenge.test",
            password=unusable,
        )
        for credential, _ in grants
    )
    now = timezone.now()
    KitsuToken.objects.bulk_create(
        KitsuToken(
            user=user,
            kitsu_user_id=credential["user_id"],
            kitsu_username=credential["slug"],
            access_token=token.access_token,
            refresh_token=token.refresh_token or "",
            token_expires_at=token.expires_at or now + timedelta(days=30),
            auth_flow=AuthFlow.PASSWORD,
        )
        for user, (credential, token) in zip(users, grants, strict=True)
    )
    return [
        LinkedUser(user.pk, credential["user_id"], token.access_token)
        for user, (credential, token) in zip(users, grants, strict=True)
    ]


# --- other processes --------------------------------------------------------------------------


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"Timed out after {timeout:.0f} s waiting for {what}.")
        time.sleep(every)


def run_measurement(module: str, arguments: Sequence[str], environment: dict[str, str]) -> Any:
    """Run `python -m module arguments` in a fresh process; its last stdout line is JSON."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"python -m {module} {' '.join(arguments)} failed:\n{completed.stderr[-4000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one live process, from /proc."""
    fields = _stat_fields(Path(f"/proc/{pid}"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat_fields(entry: Path) -> list[str]:
    # The command name may hold spaces and parentheses: the fields start after the last ")".
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds_of_command(command: str) -> float:
    """CPU time of every live process named `command`, plus what their exited children used
    (a PostgreSQL backend's time lands in the postmaster's once it exits)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != command:
                continue
            fields = _stat_fields(entry)
        except OSError:
            continue  # exited meanwhile
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat_fields(entry)[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, over all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / ticks, sum(values) / ticks


class CeleryWorkers:
    """A `celery worker` (prefork) consuming its own queue on the Redis broker."""

    def __init__(self, process: subprocess.Popen[bytes], queue: str, log: Path) -> None:
        self.process = process
        self.queue = queue
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> list[int]:
        """The main process and its pool processes."""
        return [self.process.pid, *children_of(self.process.pid)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                total += process_cpu_seconds(pid)
            except OSError:
                continue  # a pool process that exited meanwhile
        return total


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that `finally` blocks stop the workers this started
    (a background shell job ignores Ctrl-C's SIGINT)."""
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))


@contextmanager
def routed_to(queue: str) -> Iterator[None]:
    """Send this process's tasks to `queue` (Celery caches its queue setup: reset it)."""
    from revenge_site.celery import app

    def reset() -> None:
        for cached in ("queues", "default_queue", "router"):
            app.amqp.__dict__.pop(cached, None)

    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    reset()
    try:
        yield
    finally:
        app.conf.task_default_queue = previous
        reset()


@contextmanager
def celery_workers(
    environment: dict[str, str], *, processes: int = 2, log_dir: Path
) -> Iterator[CeleryWorkers]:
    """`celery -A revenge_site worker --concurrency N` as deployed (docker-compose.yml), on
    a fresh queue that this process's tasks are routed to while it runs."""
    queue = f"kitsu-bench-{uuid.uuid4().hex[:12]}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{queue}.log"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "revenge_site",
        "worker",
        "--queues",
        queue,
        "--hostname",
        f"{queue}@%h",
        "--concurrency",
        str(processes),
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "INFO",
    ]
    env = {**os.environ, **environment, "CELERY_TASK_DEFAULT_QUEUE": queue}
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    workers = CeleryWorkers(process, queue, log)
    try:
        wait_for(
            lambda: " ready." in workers.log_text() or process.poll() is not None,
            timeout=60,
            what="the Celery worker to start",
        )
        if process.poll() is not None:
            raise RuntimeError(f"The Celery worker exited:\n{workers.log_text()[-4000:]}")
        wait_for(
            lambda: len(children_of(process.pid)) >= processes,
            timeout=30,
            what="the worker's pool processes",
        )
        with routed_to(queue):
            yield workers
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        # The queue, and the exchange bindings kombu keeps beside it (same name).
        redis.Redis.from_url(environment["REDIS_URL"]).delete(
            queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"
        )


# --- reporting --------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if i else "---" for i in range(len(headers))) + "|",
    ]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def save_results(name: str, results: Any) -> Path:
    """Write a benchmark's figures to var/bench/<name>.json (for the README's tables)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    return path


def machine_description() -> dict[str, Any]:
    """The machine, and how busy other work kept it (load average over 1, 5 and 15 minutes)."""
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "database": database_name(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def load_note(before: dict[str, Any], after: dict[str, Any]) -> str:
    """One line saying how busy the machine was, to read the timings by."""
    return (
        f"load average (1 min) {before['load_average'][0]:.2f} before, "
        f"{after['load_average'][0]:.2f} after, on {before['cpus']} CPUs"
    )
