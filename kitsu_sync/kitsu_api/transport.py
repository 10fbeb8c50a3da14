"""The one place that talks HTTP to Kitsu: headers, auth, timeouts, rate limit and retries.

Everything else in `kitsu_api` calls `Transport.request`. Tokens travel only in the
Authorization header; they never reach exception messages, reprs or log records.

Each attempt has a deadline for the whole answer (connect, headers and body), and its body a
size cap: the read timeout alone bounds each read, not an answer sent a few bytes at a time,
and nothing bounded the size of one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)

from kitsu_sync.kitsu_api.errors import (
    KitsuConnectionError,
    KitsuError,
    KitsuRateLimited,
    KitsuResponseError,
    KitsuResponseTooLarge,
    KitsuServerError,
    KitsuTimeout,
    KitsuUnreachable,
    error_for_response,
)
from kitsu_sync.kitsu_api.ratelimit import RateLimiter

logger = logging.getLogger(__name__)

VERSION = "0.1.0"
DEFAULT_USER_AGENT = f"revenge-kitsu-sync/{VERSION} (+self-hosted)"
JSON_API = "application/vnd.api+json"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
# Seconds for one attempt's whole answer: connect, headers and body.
DEFAULT_DEADLINE = 60.0
# Bytes of one answer's body (decoded). The largest answer the client asks for, a 500-entry
# library page with its anime and their mappings, is about 3.6 MB; 32 MiB leaves room for
# Kitsu's records to grow and still bounds the memory a page in flight can take.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# Read the body this much at a time at most; each read returns what has arrived.
_READ_BYTES = 65_536


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to repeat a request that failed in a retryable way.

    The n-th wait is `backoff * 2**(n-1) + uniform(0, jitter)`, capped at `backoff_max`.
    A Retry-After header (seconds or HTTP date) replaces it, capped at `retry_after_max`.
    """

    attempts: int = 4
    backoff: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.5
    retry_after_max: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1.")
        if min(self.backoff, self.backoff_max, self.jitter, self.retry_after_max) < 0:
            raise ValueError("RetryPolicy delays must not be negative.")

    def wait(self, retry_state: RetryCallState) -> float:
        """Seconds to wait before the next attempt (a tenacity wait strategy)."""
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(max(float(retry_after), 0.0), self.retry_after_max)
        backoff = wait_exponential_jitter(
            multiplier=self.backoff, max=self.backoff_max, jitter=self.jitter
        )
        return backoff(retry_state)


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket the answer's body comes from: the connection's, or (once urllib3 has let go
    of a connection that closes after this answer) the one http.client reads from."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is None:
        reader = getattr(getattr(response.raw, "_fp", None), "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) and sock.fileno() >= 0 else None


class _Watchdog:
    """Shuts `sock` down after `seconds` unless cancelled first (`fired` says it did)."""

    def __init__(self, sock: Any, seconds: float) -> None:
        self._sock = sock
        self._fired = threading.Event()
        # Once `cancel` returns it has either fired or never will: a socket handed back to the
        # pool for the next request is never shut under it.
        self._lock = threading.Lock()
        self._cancelled = False
        self._timer: threading.Timer | None = None
        if sock is not None:
            self._timer = threading.Timer(max(seconds, 0.0), self._cut)
            self._timer.daemon = True
            self._timer.start()

    @property
    def fired(self) -> bool:
        return self._fired.is_set()

    def _cut(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self._fired.set()
            with contextlib.suppress(OSError):  # closed already
                self._sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
        if self._timer is not None:
            self._timer.cancel()


@dataclass(frozen=True)
class TransportResponse:
    status: int
    # The body of a token response holds tokens: keep it out of reprs.
    headers: Mapping[str, str] = field(repr=False)
    body: Any = field(repr=False)


def _retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now, 0.0)


def _text(content: bytes, encoding: str | None) -> str:
    """A body as text, in its declared encoding (UTF-8 when none or an unknown one)."""
    try:
        return content.decode(encoding or "utf-8", errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def _never_connected(exc: requests.exceptions.RequestException) -> bool:
    """True when no connection was made, so the request provably never left this machine."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _public_location(url: str | None) -> str | None:
    """A redirect target without its query string (which could echo our parameters)."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path


class Transport:
    """Sends requests to Kitsu's JSON:API (`base="api"`) and OAuth (`base="oauth"`) endpoints."""

    def __init__(
        self,
        *,
        api_url: str,
        oauth_url: str,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        rate_limiter: RateLimiter | None = None,
        rate_limit_wait: float | None = 120.0,
        retry: RetryPolicy = RetryPolicy(),
        user_agent: str = DEFAULT_USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        on_retry: Callable[[str, str, BaseException | None], None] | None = None,
        deadline: float = DEFAULT_DEADLINE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if deadline <= 0:
            raise ValueError("The deadline must be a positive number of seconds.")
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be a positive number of bytes.")
        self.api_url = api_url.rstrip("/")
        self.oauth_url = oauth_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout
        self.rate_limiter = rate_limiter
        self.rate_limit_wait = rate_limit_wait
        self.retry = retry
        self.user_agent = user_agent
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self._sleep = sleep
        self._clock = clock
        # Told (method, url, error) before each retry: how the caller counts them (metrics).
        self.on_retry = on_retry
        self._origins = {_origin(self.api_url), _origin(self.oauth_url)}
        self._requests_made = 0
        self._count_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Transport(api_url={self.api_url!r}, oauth_url={self.oauth_url!r})"

    @property
    def longest_request(self) -> float:
        """Seconds one `request` can take at most (math.inf with an unbounded limiter wait).

        Every attempt may wait the rate limiter's longest wait and then its whole deadline, and
        between attempts comes the longest retry wait: attempts x (rate_limit_wait + deadline)
        + (attempts - 1) x max(backoff_max, retry_after_max).
        """
        limiter_wait = 0.0 if self.rate_limiter is None else self.rate_limit_wait
        if limiter_wait is None:
            return math.inf
        retry = self.retry
        between = max(retry.backoff_max, retry.retry_after_max)
        return retry.attempts * (limiter_wait + self.deadline) + (retry.attempts - 1) * between

    @property
    def requests_made(self) -> int:
        """Attempts handed to the network (every retry counts), across all threads."""
        with self._count_lock:
            return self._requests_made

    def url_for(self, url_or_path: str, base: str = "api") -> str:
        """An absolute URL for a path under the API or OAuth root, or a Kitsu link as is."""
        if url_or_path.startswith(("http://", "https://")):
            # A links.next from a misbehaving server must not carry the token elsewhere.
            if _origin(url_or_path) not in self._origins:
                raise KitsuResponseError(
                    f"Kitsu sent a link to another host ({urlsplit(url_or_path).netloc}); "
                    "refusing to follow it."
                )
            return url_or_path
        if base not in ("api", "oauth"):
            raise ValueError(f"base must be 'api' or 'oauth', not {base!r}")
        root = self.api_url if base == "api" else self.oauth_url
        return f"{root}/{url_or_path.lstrip('/')}"

    def request(
        self,
        method: str,
        url_or_path: str,
        *,
        token: str | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        base: str = "api",
    ) -> TransportResponse:
        """Send one logical request (several attempts when a retry may help)."""
        method = method.upper()
        if json_body is not None and form is not None:
            raise ValueError("Send either json_body or form, not both.")
        url = self.url_for(url_or_path, base)
        headers = {
            "User-Agent": self.user_agent,
            # Doorkeeper answers plain JSON; JSON:API's 406 rule applies to /api/edge only.
            "Accept": JSON_API if base == "api" else "application/json",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data: bytes | Mapping[str, str] | None = None
        if json_body is not None:
            # Kitsu answers 415 to a write without exactly this media type.
            headers["Content-Type"] = JSON_API
            data = json.dumps(json_body).encode()
        elif form is not None:
            data = form  # requests form-encodes it, escaping every special character

        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=self.retry.wait,
            retry=retry_if_exception(lambda error: self._may_retry(method, error)),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(self._attempt, method, url, headers, params, data)

    def _may_retry(self, method: str, error: BaseException) -> bool:
        if isinstance(error, KitsuUnreachable):
            return True
        if method not in IDEMPOTENT_METHODS:
            # A POST that may have reached Kitsu is never repeated: it could create twice.
            return False
        if isinstance(error, KitsuResponseTooLarge):
            return False  # as large again next time: the cap is there to bound the download
        if isinstance(error, KitsuResponseError):
            return method == "GET"
        return isinstance(error, KitsuConnectionError | KitsuServerError | KitsuRateLimited)

    def _attempt(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: Mapping[str, Any] | None,
        data: bytes | Mapping[str, str] | None,
    ) -> TransportResponse:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire(timeout=self.rate_limit_wait)
        path = urlsplit(url).path
        with self._count_lock:
            self._requests_made += 1
        started = time.monotonic()
        # The deadline starts once the slot is ours: a queue at the limiter is not Kitsu's.
        deadline_at = started + self.deadline
        try:
            response = self.session.request(
                method,
                url,
                headers=headers,
                params=params,
                data=data,
                timeout=self._timeouts(),
                allow_redirects=False,
                stream=True,
            )
            try:
                content = self._read_body(response, method, url, deadline_at)
            except BaseException:
                response.close()  # never leave the unread rest for the next request
                raise
        except requests.exceptions.RequestException as exc:
            logger.debug(
                "Kitsu %s %s failed after %.0f ms: %s",
                method,
                path,
                (time.monotonic() - started) * 1000,
                type(exc).__name__,
            )
            raise self._connection_error(exc, url) from exc
        # Read to the end: the connection may carry the next request.
        response.raw.release_conn()
        logger.debug(
            "Kitsu %s %s -> %s in %.0f ms",
            method,
            path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return self._decode(method, response, content)

    def _timeouts(self) -> tuple[float, float]:
        """(connect, read) timeouts, neither longer than the deadline."""
        connect, read = self.timeout if isinstance(self.timeout, tuple) else (self.timeout,) * 2
        return min(connect, self.deadline), min(read, self.deadline)

    def _read_body(
        self, response: requests.Response, method: str, url: str, deadline_at: float
    ) -> bytes:
        """The whole (decoded) body, read as it arrives; KitsuTimeout past the deadline and
        KitsuResponseError past the size cap, whichever comes first."""
        path = urlsplit(url).path
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > self.max_response_bytes:
            raise self._too_large(method, path, f"is {int(declared)} bytes, more than")
        # Each read waits at most the time left: a body that trickles in cannot outlast it.
        sock = _socket_of(response)
        read_timeout = self._timeouts()[1]
        # One read can be many socket reads (a chunk-size line sent a byte at a time, deflate
        # blocks that decode to nothing), each given the time left again: at the deadline a
        # watchdog shuts the socket, whatever read is under way.
        cut = _Watchdog(sock, deadline_at - time.monotonic())
        body = bytearray()
        try:
            while True:
                left = deadline_at - time.monotonic()
                if left <= 0 or cut.fired:
                    raise self._deadline_passed(url)
                if sock is not None:
                    # http.client closes its socket once the body is all in: nothing to bound.
                    with contextlib.suppress(OSError):
                        sock.settimeout(min(read_timeout, left))
                chunk = self._read_chunk(response, method, url, deadline_at)
                if not chunk:
                    break
                body += chunk
                if len(body) > self.max_response_bytes:
                    raise self._too_large(method, path, "grew past")
        except Exception:
            if cut.fired:
                raise self._deadline_passed(url) from None
            raise
        finally:
            cut.cancel()
        if cut.fired:  # the end seen may be the watchdog's, not the answer's
            raise self._deadline_passed(url)
        return bytes(body)

    def _read_chunk(
        self, response: requests.Response, method: str, url: str, deadline_at: float
    ) -> bytes:
        """What has arrived of the body (b"" at its end); urllib3 errors as requests or ours."""
        try:
            return response.raw.read1(_READ_BYTES, decode_content=True)
        except ReadTimeoutError as exc:
            if time.monotonic() >= deadline_at:
                raise self._deadline_passed(url) from exc
            raise requests.exceptions.ReadTimeout(exc) from exc
        except DecodeError as exc:
            raise KitsuResponseError(
                f"Kitsu's answer to {method} {urlsplit(url).path} could not be decoded "
                f"({response.headers.get('Content-Encoding', 'no content encoding')}).",
                status=response.status_code,
            ) from exc
        except HTTPError as exc:
            raise requests.exceptions.ConnectionError(exc) from exc

    def _too_large(self, method: str, path: str, how: str) -> KitsuResponseTooLarge:
        return KitsuResponseTooLarge(
            f"Kitsu's answer to {method} {path} {how} the {self.max_response_bytes}-byte limit "
            "for one answer; the rest of it was not read."
        )

    def _deadline_passed(self, url: str) -> KitsuTimeout:
        return KitsuTimeout(
            f"Kitsu at {urlsplit(url).netloc} did not finish its answer within the "
            f"{self.deadline:g} s deadline."
        )

    def _connection_error(
        self, exc: requests.exceptions.RequestException, url: str
    ) -> KitsuConnectionError:
        host = urlsplit(url).netloc
        # Messages name the host only: requests' own text includes the URL and query.
        if _never_connected(exc):
            return KitsuUnreachable(f"Could not connect to Kitsu at {host}.")
        if isinstance(exc, requests.exceptions.Timeout):
            return KitsuTimeout(f"Kitsu at {host} did not answer within the timeout.")
        return KitsuConnectionError(
            f"The connection to Kitsu at {host} failed ({type(exc).__name__})."
        )

    def _decode(
        self, method: str, response: requests.Response, content: bytes
    ) -> TransportResponse:
        status = response.status_code
        body: Any = None
        if 200 <= status < 300:
            if status == 204:
                return TransportResponse(status, response.headers, None)
            try:
                body = json.loads(content)
            except ValueError as exc:
                raise KitsuResponseError(
                    f"Kitsu answered HTTP {status} to {method} "
                    f"{urlsplit(response.url or '').path} with a body that is not JSON "
                    f"({len(content)} bytes, "
                    f"{response.headers.get('Content-Type', 'no content type')}).",
                    status=status,
                ) from exc
            return TransportResponse(status, response.headers, body)

        try:
            body = json.loads(content)
        except ValueError:
            body = _text(content, response.encoding)  # Rack::Attack's "Retry later\n", ...
        raise error_for_response(
            status,
            body,
            retry_after=_retry_after_seconds(response.headers.get("Retry-After"), self._clock()),
            location=_public_location(response.headers.get("Location")),
        )

    def _log_retry(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        method, url = retry_state.args[0], retry_state.args[1]
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        logger.info(
            "Kitsu %s %s: %s Retrying in %.1f s (attempt %d of %d).",
            method,
            urlsplit(url).path,
            error.message if isinstance(error, KitsuError) else type(error).__name__,
            wait,
            retry_state.attempt_number + 1,
            self.retry.attempts,
        )
        if self.on_retry is not None:
            self.on_retry(method, url, error)
