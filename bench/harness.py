"""What the benchmarks share: their own database, a sandbox over real HTTP, linked users,
real Celery workers, and counters for Kitsu requests, SQL round trips and rows written.

The benchmarks drive the product's own services (`run_sync`, the Celery tasks, the beat
dispatcher) exactly as a worker or a command would; nothing here special-cases the sandbox.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import requests
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from psycopg import sql

from kitsu_sync.kitsu_api import Transport
from kitsu_sync.kitsu_client import get_transport
from kitsu_sync.models import (
    Anime,
    AuthFlow,
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    SyncOutcome,
    SyncRun,
    SyncTrigger,
)
from kitsu_sync.sandbox import SandboxConfig, SandboxServer
from kitsu_sync.services.sync import run_sync
from tests.celery_worker import CeleryWorker, celery_worker, current_database_url, wait_for
from tests.sandbox_handle import SandboxHandle
from tests.sync_support import sandbox_grant

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "var" / "bench"
HTTP_TIMEOUT = 60
# Kitsu's LibraryPaginator maximum (docs/kitsu-api.md §4.3), the page size the import asks for.
PAGE_SIZE = 500
# High enough never to pace one user's sync (pacing is the fleet benchmark's subject), while the
# shared Redis limiter still costs its round trip per request, as in production.
UNPACED_RATE_LIMIT = 100_000
LIBRARY_ROUTE = "GET /api/edge/library-entries"
CONTROL_PREFIX = "/__sandbox"
# Benchmarks empty their database: only one made for them (or a test database) will do.
SCRATCH_DATABASE = re.compile(r"bench|^test_")
WRITE_STATEMENT = re.compile(r'\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)


# --- database ---------------------------------------------------------------------------------


def database_name() -> str:
    return str(connection.settings_dict["NAME"])


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


class Sandbox(SandboxHandle):
    """The handle the tests use, with the arrival of each Kitsu request logged too."""

    def __init__(self, server: SandboxServer) -> None:
        super().__init__(server, timeout=HTTP_TIMEOUT)
        self.arrivals = ArrivalLog(self.server.server.app)
        self.server.server.app = self.arrivals

    def request_log(self) -> list[dict[str, Any]]:
        """Every request answered since the stats were cleared: `t` is when the answer left."""
        return self.requests_log()

    def clear_stats(self) -> None:
        keep = ("data", "faults", "throttle", "tokens", "latency")
        self.reset(stats=True, **dict.fromkeys(keep, False))
        self.arrivals.times.clear()

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


def running_sandbox(config: SandboxConfig) -> AbstractContextManager[Sandbox]:
    """A sandbox served from this process's threads while the block runs."""
    return Sandbox.serving(config)


def one_user_library(anime_entries: int) -> SandboxConfig:
    """A sandbox whose one user has exactly this many anime entries (login throttle off)."""
    return SandboxConfig(users=1, entries=library_size_for(anime_entries), login_throttle_limit=0)


def product_environment(sandbox: Sandbox, *, rate_limit: float) -> dict[str, str]:
    """Settings, as environment variables, that point another process at this sandbox."""
    return {
        "DATABASE_URL": current_database_url(),
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
    grants = [
        (credential, sandbox_grant(sandbox, credential, transport))
        for credential in sandbox.all_credentials()[:count]
    ]
    unusable = make_password(None)
    users = get_user_model().objects.bulk_create(
        get_user_model()(
            username=f"bench{credential.index}",
            email=f"bench{credential.index}@revenge.test",
            password=unusable,
        )
        for credential, _ in grants
    )
    now = timezone.now()
    KitsuToken.objects.bulk_create(
        KitsuToken(
            user=user,
            kitsu_user_id=credential.user_id,
            kitsu_username=credential.slug,
            access_token=token.access_token,
            refresh_token=token.refresh_token or "",
            token_expires_at=token.expires_at or now + timedelta(days=30),
            auth_flow=AuthFlow.PASSWORD,
        )
        for user, (credential, token) in zip(users, grants, strict=True)
    )
    return [
        LinkedUser(user.pk, credential.user_id, token.access_token)
        for user, (credential, token) in zip(users, grants, strict=True)
    ]


# --- other processes --------------------------------------------------------------------------


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

    def __init__(self, worker: CeleryWorker) -> None:
        self.worker = worker

    def pids(self) -> list[int]:
        """The main process and its pool processes."""
        return [self.worker.process.pid, *children_of(self.worker.process.pid)]

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
def celery_workers(
    environment: dict[str, str], *, processes: int = 2, log_dir: Path
) -> Iterator[CeleryWorkers]:
    """`celery -A revenge_site worker --concurrency N` as deployed (docker-compose.yml), on
    a fresh queue that this process's tasks are routed to while it runs."""
    with celery_worker(
        log_dir=log_dir,
        environment=environment,
        pool="prefork",
        concurrency=processes,
        queue_prefix="kitsu-bench",
    ) as worker:
        wait_for(
            lambda: len(children_of(worker.process.pid)) >= processes,
            timeout=30,
            what="the worker's pool processes",
        )
        yield CeleryWorkers(worker)


# --- the web server ----------------------------------------------------------------------------

# gunicorn's access log, one line per request: method, path, status, time taken in microseconds.
ACCESS_LOG_FORMAT = "%(m)s %(U)s %(s)s %(D)s"


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Served:
    """One request as gunicorn's access log has it."""

    method: str
    path: str
    status: int
    seconds: float


class WebServer:
    """`gunicorn revenge_site.wsgi` in its own process group (its workers with it)."""

    def __init__(self, process: subprocess.Popen[bytes], *, url: str, access_log: Path) -> None:
        self.process = process
        self.url = url
        self.access_log = access_log

    def pids(self) -> list[int]:
        """The master and its workers."""
        return [self.process.pid, *children_of(self.process.pid)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                total += process_cpu_seconds(pid)
            except OSError:
                continue  # a worker that exited meanwhile
        return total

    def served(self) -> list[Served]:
        """Every request answered so far, in the order they were logged."""
        rows = []
        for line in self.access_log.read_text(errors="replace").splitlines():
            method, path, status, micros = line.split()
            rows.append(Served(method, path, int(status), int(micros) / 1e6))
        return rows

    def answering(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {self.process.returncode}")
        try:
            requests.get(f"{self.url}/health/", timeout=5)
        except requests.RequestException:
            return False
        return True

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()  # gunicorn's graceful shutdown stops its workers
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)


@contextmanager
def gunicorn_server(
    environment: dict[str, str], *, workers: int, threads: int, log_dir: Path
) -> Iterator[WebServer]:
    """`gunicorn revenge_site.wsgi:application` on a free port of 127.0.0.1 (`--threads` above
    1: the gthread worker), with this process's settings unless `environment` says otherwise;
    stopped, workers and all, on the way out."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    access_log = log_dir / f"gunicorn-{port}-access.log"
    access_log.write_text("")
    command = [
        *(sys.executable, "-m", "gunicorn", "revenge_site.wsgi:application"),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads)),
        *("--worker-class", "gthread" if threads > 1 else "sync", "--graceful-timeout", "5"),
        *("--access-logfile", str(access_log), "--access-logformat", ACCESS_LOG_FORMAT),
    ]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "revenge_site.settings",
        # Plain HTTP on 127.0.0.1, as behind the TLS-terminating proxy of docker-compose.yml.
        "SECURE_SSL_REDIRECT": "false",
        **environment,
    }
    with (log_dir / f"gunicorn-{port}.log").open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = WebServer(process, url=f"http://127.0.0.1:{port}", access_log=access_log)
    try:
        wait_for(
            lambda: len(children_of(process.pid)) >= workers and server.answering(),
            timeout=60,
            what="gunicorn to answer",
            every=0.2,
        )
        yield server
    finally:
        server.stop()


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


# --- k changes to one user's library (bench.incremental, bench.export) ---------------------------


def fully_imported_user(sandbox: Sandbox) -> LinkedUser:
    """Start over: the sandbox's seeded data, an empty database, and its one user linked and
    imported in full."""
    sandbox.reset(data=True, stats=False, latency=False)
    empty_tables()
    user = link_users(sandbox, 1)[0]
    full = run_sync(user_id=user.user_id, trigger=SyncTrigger.COMMAND, full=True)
    if full.outcome != SyncOutcome.SUCCESS:
        raise RuntimeError(f"The full import failed: {full.errors}")
    return user


def run_cases(
    benchmark_case: Callable[[Sandbox, int], dict[str, Any]],
    *,
    entries: int,
    changes: Sequence[int],
    settings: Any = django_settings,
) -> dict[str, Any]:
    """`benchmark_case(sandbox, k)` for each k, on one sandbox whose user has `entries` anime
    entries; `settings`: where to point the product (pytest's `settings` fixture in tests)."""
    with running_sandbox(one_user_library(entries)) as sandbox:
        use_sandbox(sandbox, rate_limit=UNPACED_RATE_LIMIT, settings=settings)
        cases = [benchmark_case(sandbox, k) for k in changes]
    return {"entries": entries, "cases": cases}


def run_changes_benchmark(
    benchmark: ModuleType, argv: list[str] | None, *, name: str, heading: str
) -> int:
    """The command line of a benchmark of k changes, from its module's docstring, ENTRIES,
    CHANGES, run() and report(): `--entries N --changes k1,k2`; prints `heading` (formatted
    with `entries`) and the table, and saves the figures as `name`."""
    parser = argparse.ArgumentParser(description=benchmark.__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=benchmark.ENTRIES)
    parser.add_argument("--changes", default=",".join(map(str, benchmark.CHANGES)))
    options = parser.parse_args(argv)
    prepare_database()
    before = machine_description()
    changes = [int(k) for k in options.changes.split(",")]
    results = benchmark.run(entries=options.entries, changes=changes)
    after = machine_description()
    save_results(name, {"machine": before, "machine_after": after, **results})
    print(heading.format(entries=options.entries))
    print(benchmark.report(results))
    print(load_note(before, after))
    return 0
