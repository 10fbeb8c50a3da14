"""Prometheus metrics: what the processes count, what the database says, and `/metrics`.

Two sources, chosen by what is exact across processes (docs/operations.md):

- Counters that happen inside whichever process talks to Kitsu (gunicorn workers, Celery pool
  processes): Kitsu requests by endpoint and status, retries, the rate limiter's wait, token
  refreshes, re-link events, notifications. With PROMETHEUS_MULTIPROC_DIR set, every process
  writes them to its own file in that shared folder and the scrape adds them up
  (prometheus_client's multiprocess mode); without it, a scrape sees only its own process.
- Figures the database already holds, read when Prometheus scrapes (`DatabaseCollector`): syncs
  by outcome and duration (SyncRun), sync states, queued and due syncs, the outbox's backlog,
  links needing re-link. Exact whatever process ran the sync, and nothing to keep in step.

`kitsu_api` knows nothing of this: `kitsu_client` hands the transport a `MeteredSession` (every
attempt, its endpoint, status and time), a `MeteredRateLimiter` (the wait for a slot) and
`MeteredSession.count_retry` as its retry hook.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector

from kitsu_sync.db import queued_expiry
from kitsu_sync.kitsu_api import (
    KitsuConnectionError,
    KitsuRateLimited,
    KitsuResponseError,
    KitsuServerError,
    KitsuTimeout,
    RateLimiter,
)
from kitsu_sync.models import (
    KitsuOutbox,
    KitsuSyncState,
    KitsuToken,
    SyncOutcome,
    SyncRun,
    SyncStatus,
)

logger = logging.getLogger(__name__)


# Containers number their processes from 1 each, so a web and a worker container sharing the
# folder would write the same `counter_<pid>.db`: the host name tells them apart.
_HOST = socket.gethostname().replace("_", "-")


def _process_identifier() -> str:
    return f"{_HOST}-{os.getpid()}"


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus_client picks its value class from this variable at import; the same class,
    # with files named by host and pid (prometheus_client.values.MultiProcessValue).
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_identifier)

# This process's counters. In multiprocess mode their values live in the shared folder's files
# and the scrape reads those instead.
INSTRUMENTS = CollectorRegistry()

KITSU_REQUESTS = Counter(
    "kitsu_requests",
    "HTTP requests sent to Kitsu (every attempt), by endpoint, method and status code "
    "(or timeout / connection_error when no answer came).",
    ["endpoint", "method", "status"],
    registry=INSTRUMENTS,
)
KITSU_REQUEST_SECONDS = Histogram(
    "kitsu_request_duration_seconds",
    "Time until Kitsu's answer (headers) arrived, per attempt, by endpoint.",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=INSTRUMENTS,
)
KITSU_RETRIES = Counter(
    "kitsu_retries",
    "Kitsu requests tried again after a retryable failure, by endpoint and reason.",
    ["endpoint", "reason"],
    registry=INSTRUMENTS,
)
RATE_LIMITER_WAIT = Histogram(
    "kitsu_rate_limiter_wait_seconds",
    "Time each Kitsu request waited for a slot of the shared rate limit.",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0),
    registry=INSTRUMENTS,
)
TOKEN_REFRESHES = Counter(
    "kitsu_token_refreshes",
    "Kitsu token refreshes by result: refreshed, rejected (the link needs re-linking) or "
    "failed (Kitsu could not answer).",
    ["result"],
    registry=INSTRUMENTS,
)
RELINK_EVENTS = Counter(
    "kitsu_relink_events",
    "Links that started needing a re-link, by reason.",
    ["reason"],
    registry=INSTRUMENTS,
)
NOTIFICATIONS = Counter(
    "kitsu_notifications",
    "Notices sent through Apprise, by kind and result (sent, failed).",
    ["kind", "result"],
    registry=INSTRUMENTS,
)

# --- Kitsu traffic ------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z][a-z_-]*")


def endpoint_label(path: str) -> str:
    """A path without its ids (`library-entries/:id`), so that labels stay few."""
    segments = [part for part in path.strip("/").split("/") if part][:3]
    return "/".join(part if _WORD.fullmatch(part) else ":id" for part in segments) or "/"


def retry_reason(error: BaseException | None) -> str:
    if isinstance(error, KitsuRateLimited):
        return "rate_limited"
    if isinstance(error, KitsuServerError):
        return "server_error"
    if isinstance(error, KitsuTimeout):
        return "timeout"
    if isinstance(error, KitsuConnectionError):
        return "connection"
    if isinstance(error, KitsuResponseError):
        return "bad_body"
    return "other"


class MeteredSession(requests.Session):
    """The transport's HTTP session, counting every attempt by endpoint and status."""

    def __init__(self, *, api_url: str, oauth_url: str) -> None:
        super().__init__()
        # OAuth first: its root may sit beside or under the API's.
        self._roots = [
            (urlsplit(oauth_url).path.rstrip("/"), "oauth/"),
            (urlsplit(api_url).path.rstrip("/"), ""),
        ]

    def endpoint(self, url: str) -> str:
        path = urlsplit(url).path
        for root, prefix in self._roots:
            if path == root or path.startswith(root + "/"):
                return endpoint_label(prefix + path[len(root) :])
        return "other"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        endpoint = self.endpoint(str(url))
        method_label = str(method).upper()
        started = time.monotonic()
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.exceptions.Timeout:
            KITSU_REQUESTS.labels(endpoint, method_label, "timeout").inc()
            raise
        except requests.exceptions.RequestException:
            KITSU_REQUESTS.labels(endpoint, method_label, "connection_error").inc()
            raise
        finally:
            KITSU_REQUEST_SECONDS.labels(endpoint).observe(time.monotonic() - started)
        KITSU_REQUESTS.labels(endpoint, method_label, str(response.status_code)).inc()
        return response

    def count_retry(self, method: str, url: str, error: BaseException | None) -> None:
        """The transport's retry hook: one more attempt of `url` is coming."""
        KITSU_RETRIES.labels(self.endpoint(url), retry_reason(error)).inc()


class MeteredRateLimiter(RateLimiter):
    """The shared rate limiter, timing each wait for a slot (a refused slot is not timed)."""

    def acquire(self, timeout: float | None = None) -> None:
        started = time.monotonic()
        super().acquire(timeout)
        RATE_LIMITER_WAIT.observe(time.monotonic() - started)


# --- what the database says, at scrape time -------------------------------------------------

SYNC_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
FINISHED_OUTCOMES = [SyncOutcome.SUCCESS, SyncOutcome.PARTIAL, SyncOutcome.FAILED]


def _seconds(value: timedelta | None) -> float:
    return value.total_seconds() if value is not None else 0.0


def _sync_runs() -> Iterator[Metric]:
    runs = SyncRun.objects.filter(dry_run=False)
    counts = dict(
        runs.exclude(outcome=SyncOutcome.RUNNING)
        .values_list("outcome")
        .annotate(n=Count("id"))
        .values_list("outcome", "n")
    )
    total = CounterMetricFamily(
        "kitsu_syncs",
        "Library syncs that ended, by outcome (skipped: another sync held the user's claim).",
        labels=["outcome"],
    )
    for outcome in SyncOutcome:
        if outcome != SyncOutcome.RUNNING:
            total.add_metric([outcome.value], counts.get(outcome.value, 0))
    yield total

    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le_{bound}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
        for bound in SYNC_DURATION_BUCKETS
    }
    rows = {
        row["outcome"]: row
        for row in runs.filter(outcome__in=FINISHED_OUTCOMES, finished_at__isnull=False)
        .annotate(duration=duration)
        .values("outcome")
        .annotate(n=Count("id"), seconds=Sum("duration"), **buckets)
    }
    histogram = HistogramMetricFamily(
        "kitsu_sync_duration_seconds",
        "How long library syncs took, start to end, by outcome.",
        labels=["outcome"],
    )
    for outcome in FINISHED_OUTCOMES:
        row = rows.get(outcome.value, {})
        histogram.add_metric(
            [outcome.value],
            [(str(float(bound)), row.get(f"le_{bound}", 0)) for bound in SYNC_DURATION_BUCKETS]
            + [("+Inf", row.get("n", 0))],
            sum_value=_seconds(row.get("seconds")),
        )
    yield histogram


def _sync_queue(now: Any) -> Iterator[Metric]:
    states = dict(
        KitsuSyncState.objects.values_list("last_sync_status")
        .annotate(n=Count("id"))
        .values_list("last_sync_status", "n")
    )
    by_status = GaugeMetricFamily(
        "kitsu_sync_states",
        "Users by where their sync stands (queued and running are the queue).",
        labels=["status"],
    )
    for status in SyncStatus:
        by_status.add_metric([status.value], states.get(status.value, 0))
    yield by_status

    # A queued mark older than the broker's visibility timeout is a lost message the
    # scheduler no longer counts as busy (schedule._busy): not a sync waiting for a worker.
    oldest = KitsuSyncState.objects.filter(
        last_sync_status=SyncStatus.QUEUED, updated_at__gt=now - queued_expiry()
    ).aggregate(at=Min("updated_at"))["at"]
    yield GaugeMetricFamily(
        "kitsu_oldest_queued_sync_age_seconds",
        "How long the longest-waiting queued sync has waited for a worker (0: none queued).",
        value=_seconds(now - oldest) if oldest else 0.0,
    )
    due = (
        KitsuToken.objects.due_for_sync(now)
        .exclude(
            user__kitsu_sync_state__last_sync_status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING]
        )
        .count()
    )
    yield GaugeMetricFamily(
        "kitsu_syncs_due",
        "Linked users whose sync is due and not yet queued (beat queues them).",
        value=due,
    )


def _outbox_and_links(now: Any) -> Iterator[Metric]:
    outbox = KitsuOutbox.objects.aggregate(
        n_waiting=Count("id", filter=Q(failed=False)),
        n_failed=Count("id", filter=Q(failed=True)),
        n_due=Count("id", filter=Q(failed=False, next_attempt_at__lte=now)),
        oldest=Min("queued_at", filter=Q(failed=False)),
    )
    changes = GaugeMetricFamily(
        "kitsu_outbox_changes",
        "Changes bound for Kitsu: waiting to be sent, or refused by Kitsu (failed).",
        labels=["state"],
    )
    changes.add_metric(["waiting"], outbox["n_waiting"])
    changes.add_metric(["failed"], outbox["n_failed"])
    yield changes
    yield GaugeMetricFamily(
        "kitsu_outbox_due", "Waiting changes whose next attempt is due now.", value=outbox["n_due"]
    )
    yield GaugeMetricFamily(
        "kitsu_outbox_oldest_change_age_seconds",
        "How long the oldest change still waiting for Kitsu has waited (0: none).",
        value=_seconds(now - outbox["oldest"]) if outbox["oldest"] else 0.0,
    )
    links = KitsuToken.objects.aggregate(
        n_ok=Count("id", filter=Q(needs_relink=False)),
        n_relink=Count("id", filter=Q(needs_relink=True)),
    )
    linked = GaugeMetricFamily(
        "kitsu_links", "Kitsu links, by whether they work or need re-linking.", labels=["state"]
    )
    linked.add_metric(["ok"], links["n_ok"])
    linked.add_metric(["needs_relink"], links["n_relink"])
    yield linked


class DatabaseCollector:
    """Figures read from the database at each scrape (exact whatever process did the work)."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        try:
            families = [*_sync_runs(), *_sync_queue(now), *_outbox_and_links(now)]
        except DatabaseError:
            logger.warning("The metrics could not read the database", exc_info=True)
            families = []
        yield from families
        yield GaugeMetricFamily(
            "kitsu_metrics_database_up",
            "1 when this scrape could read the database's figures, else 0.",
            value=1.0 if families else 0.0,
        )


class _ThisProcess:
    """This process's own counters (when there is no multiprocess folder to read)."""

    def collect(self) -> Iterator[Metric]:
        return INSTRUMENTS.collect()


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector())
    folder = settings.PROMETHEUS_MULTIPROC_DIR
    if folder:
        MultiProcessCollector(registry, path=folder)
    else:
        registry.register(_ThisProcess())
    return registry


# --- the endpoint -------------------------------------------------------------------------------


def _address_allowed(address: str) -> bool:
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped is not None:
        client = client.ipv4_mapped
    return any(
        client in ipaddress.ip_network(allowed, strict=False)
        for allowed in settings.METRICS_ALLOWED_IPS
    )


def _token_matches(request: HttpRequest) -> bool:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), settings.METRICS_TOKEN.encode()
    )


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus' text exposition, for a scraper holding the token and/or on an allowed
    address (both, when both are configured)."""
    if not settings.METRICS_ENABLED:
        raise Http404("Metrics are not enabled.")
    if settings.METRICS_ALLOWED_IPS and not _address_allowed(request.META.get("REMOTE_ADDR", "")):
        return HttpResponse("This address may not read the metrics.\n", status=403)
    if settings.METRICS_TOKEN and not _token_matches(request):
        response = HttpResponse("Send the metrics token as a Bearer token.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
