"""The sandbox WSGI app and its threaded Werkzeug server.

Every request outside /__sandbox/ is counted; fault rules and the configured latency apply
to it before it reaches the Kitsu routes (or, for truncate and drip, to its answer).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from html import escape
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from kitsu_sync.sandbox import api, oauth
from kitsu_sync.sandbox.config import FaultRule, SandboxConfig
from kitsu_sync.sandbox.control import CONTROL, ControlApi
from kitsu_sync.sandbox.images import MediaFiles
from kitsu_sync.sandbox.query import encode_json, route_not_found
from kitsu_sync.sandbox.store import SandboxStore

CLOUDFLARE_502 = """<!DOCTYPE html>
<html lang="en-US">
<head><title>kitsu.app | 502: Bad gateway</title></head>
<body>
<div id="cf-error-details">
<h1>Bad gateway <span>Error code 502</span></h1>
<p>The web server reported a bad gateway error.</p>
<p>Cloudflare Ray ID: <strong>8c1f2a3b4d5e6f70</strong> &bull; Performance &amp; security by
Cloudflare</p>
</div>
</body>
</html>
"""
# What a huge fault's padding is cut from.
HUGE_BLOCK = b"x" * 65_536
STATUS_TITLES = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def _route_label(rule: Rule, values: dict[str, Any]) -> str:
    """`/api/edge/anime/:id` for a request to /api/edge/anime/1 (names the route, not the id)."""
    parts = []
    for segment in rule.rule.split("/"):
        if segment.startswith("<") and segment.endswith(">"):
            argument = segment[1:-1].split(":")[-1]
            # Collections and relationship names are part of the route; ids are not.
            if argument in ("collection", "name", "namespace"):
                parts.append(str(values.get(argument, f":{argument}")))
            else:
                parts.append(f":{argument}")
        else:
            parts.append(segment)
    return "/".join(parts)


class SandboxApp:
    """The WSGI application: counting, faults and latency around the Kitsu routes."""

    def __init__(self, config: SandboxConfig, store: SandboxStore | None = None) -> None:
        self.config = config
        self.store = store or SandboxStore(config)
        self.edge = api.EdgeApi(self.store)
        self.oauth = oauth.OAuthApi(self.store)
        self.control = ControlApi(self.store)
        self.media = MediaFiles(self.store, config.media_path)
        # Fresh copies: a Rule binds to one Map, and a process may run several sandboxes.
        self.url_map = Map(
            [rule.empty() for rule in (*api.RULES, *oauth.RULES)], strict_slashes=False
        )
        self.oauth_endpoints = {rule.endpoint for rule in oauth.RULES}
        # Set on shutdown, so that sleeping (latency, slow faults) threads wake up.
        self.stopping = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path
        if path == CONTROL or path.startswith(f"{CONTROL}/"):
            return self.control(request)(environ, start_response)
        if self.media.handles(path):
            # The image host is not the API: never counted, faulted or slowed.
            response = self.media(request)
            response.headers["Access-Control-Allow-Origin"] = "*"
            return response(environ, start_response)
        if path == "/" and request.method in ("GET", "HEAD"):
            return self.index(request)(environ, start_response)
        method = request.method
        if method == "OPTIONS":
            return self.preflight(request)(environ, start_response)
        rule, values = self.match(environ)
        route = _route_label(rule, values) if rule is not None else path
        query = request.query_string.decode("latin-1")
        fault = self.store.faults.take(method, path)
        if fault is not None and fault.kind == "drop":
            self.store.log.record(method, route, path, query, 0)
            return self.drop(environ, start_response)
        response = self.answer(request, rule, values, fault)
        # Kitsu's CORS is open (Rack::Cors, origins '*').
        response.headers["Access-Control-Allow-Origin"] = "*"
        self.store.log.record(method, route, path, query, response.status_code)
        return response(environ, start_response)

    def answer(
        self,
        request: Request,
        rule: Rule | None,
        values: dict[str, Any],
        fault: FaultRule | None,
    ) -> Response:
        """The Kitsu route's answer, or the fault's instead of it or made of it."""
        if fault is not None and fault.kind in ("status", "rate_limit", "html", "huge"):
            return self.fault_response(fault)
        if fault is not None and fault.kind == "slow":
            self.stopping.wait(fault.seconds)
        if self.store.latency_ms:
            self.stopping.wait(self.store.latency_ms / 1000)
        response = self.dispatch(request, rule, values)
        if fault is not None and fault.kind == "truncate":
            body = response.get_data()
            response.set_data(body[: len(body) // 2])
        if fault is not None and fault.kind == "drip":
            response = self.drip(response, fault)
        return response

    def match(self, environ: dict[str, Any]) -> tuple[Rule | None, dict[str, Any]]:
        adapter = self.url_map.bind_to_environ(environ)
        try:
            rule, values = adapter.match(return_rule=True)
        except HTTPException:
            return None, {}
        return rule, values

    def dispatch(self, request: Request, rule: Rule | None, values: dict[str, Any]) -> Response:
        if rule is None:
            error = route_not_found()
            return api.respond(error.body, error.status)
        if rule.endpoint in self.oauth_endpoints:
            return self.oauth.answer(request, rule.endpoint, values)
        return self.edge.answer(request, rule.endpoint, values)

    def drip(self, response: Response, fault: FaultRule) -> Response:
        """The same answer, `fault.body_size` bytes at a time with `fault.seconds` between
        pieces: each read is quick, the whole answer slow (a stalled proxy, a slow-loris)."""
        body = response.get_data()
        piece = fault.body_size

        def pieces() -> Iterator[bytes]:
            for start in range(0, len(body), piece):
                # A stopping server ends the answer early rather than keep its thread.
                if start and self.stopping.wait(fault.seconds):
                    return
                yield body[start : start + piece]

        dripped = Response(pieces(), status=response.status_code, headers=response.headers)
        if fault.chunked:
            del dripped.headers["Content-Length"]
        else:
            dripped.headers["Content-Length"] = str(len(body))
        return dripped

    @staticmethod
    def huge_response(fault: FaultRule) -> Response:
        """A valid JSON:API document of `fault.body_size` bytes, made while it is sent, so that
        a body of gigabytes costs the sandbox one 64 KiB block."""
        head, tail = b'{"data":[],"meta":{"padding":"', b'"}}'
        padding = max(fault.body_size - len(head) - len(tail), 0)

        def body() -> Iterator[bytes]:
            yield head
            left = padding
            while left:
                step = min(left, len(HUGE_BLOCK))
                yield HUGE_BLOCK[:step]
                left -= step
            yield tail

        response = Response(
            body(), status=fault.response_status, content_type=api.JSONAPI_MEDIA_TYPE
        )
        if not fault.chunked:
            response.headers["Content-Length"] = str(len(head) + padding + len(tail))
        return response

    @classmethod
    def fault_response(cls, fault: FaultRule) -> Response:
        status = fault.response_status
        if fault.kind == "huge":
            return cls.huge_response(fault)
        if fault.kind == "rate_limit":
            return Response("Retry later\n", status=status, content_type="text/plain")
        if fault.kind == "html":
            return Response(CLOUDFLARE_502, status=status, content_type="text/html; charset=UTF-8")
        title = STATUS_TITLES.get(status, "Injected failure")
        return Response(
            encode_json({"errors": [{"title": title, "status": str(status)}]}),
            status=status,
            content_type=api.JSONAPI_MEDIA_TYPE,
        )

    @staticmethod
    def drop(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        """Close the connection without an answer (the server then fails to write, silently)."""
        connection = environ.get("werkzeug.socket")
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return []

    @staticmethod
    def preflight(request: Request) -> Response:
        response = Response(status=200)
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
        requested = request.headers.get("Access-Control-Request-Headers")
        if requested:
            response.headers["Access-Control-Allow-Headers"] = requested
        response.headers["Access-Control-Max-Age"] = "7200"
        return response

    def index(self, request: Request) -> Response:
        base = request.host_url.rstrip("/")
        demo = self.store.credentials()[0]
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kitsu sandbox</title></head>
<body style="font-family:sans-serif;max-width:40rem;margin:3rem auto">
<h1>Kitsu sandbox</h1>
<p>A local stand-in for kitsu.app, with seeded data (seed {self.config.seed}).</p>
<ul>
<li>JSON:API: <code>{escape(base)}/api/edge</code></li>
<li>OAuth: <code>{escape(base)}/api/oauth</code></li>
<li>Demo login: <code>{escape(demo.email)}</code> (or <code>{escape(demo.slug)}</code>),
password <code>{escape(demo.password)}</code></li>
<li>Images: <code>{escape(self.store.media_host)}</code></li>
<li>All seeded logins: <a href="/__sandbox/users">/__sandbox/users</a></li>
</ul></body></html>
"""
        return Response(page, content_type="text/html; charset=utf-8")


def create_app(config: SandboxConfig | None = None) -> SandboxApp:
    return SandboxApp(config or SandboxConfig())


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without a log line per request (benchmarks make millions)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if getattr(self.server, "log_requests", False):
            super().log_request(code, size)


class SandboxServer:
    """A running sandbox: its URLs, its in-process store, and a way to stop it."""

    def __init__(self, app: SandboxApp, server: BaseWSGIServer, host: str) -> None:
        self.app = app
        self.server = server
        self.host = host
        self.port: int = server.server_address[1]
        self.thread: threading.Thread | None = None

    @property
    def store(self) -> SandboxStore:
        return self.app.store

    @property
    def config(self) -> SandboxConfig:
        return self.app.config

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def browsable_url(self) -> str:
        """`base_url`, with loopback for a wildcard address (0.0.0.0 is no place to fetch from)."""
        if self.host in ("0.0.0.0", ""):  # noqa: S104 - recognising it, not binding to it
            return f"http://127.0.0.1:{self.port}"
        if self.host == "::":
            return f"http://[::1]:{self.port}"
        return self.base_url

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/edge"

    @property
    def oauth_url(self) -> str:
        return f"{self.base_url}/api/oauth"

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.1)

    def shutdown(self) -> None:
        self.app.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=10)

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def build_server(config: SandboxConfig, host: str, port: int) -> SandboxServer:
    app = create_app(config)
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    server.log_requests = config.log_requests  # type: ignore[attr-defined]
    # Many clients at once (benchmarks, parallel imports): a deeper accept queue than 5.
    server.socket.listen(128)
    sandbox = SandboxServer(app, server, host)
    # A media_url path ("/media") becomes this server's own address, now the port is known.
    app.store.serve_media_at(sandbox.browsable_url)
    return sandbox


def serve_in_thread(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> SandboxServer:
    """Start a sandbox in a daemon thread; port 0 picks a free port (see `.base_url`)."""
    sandbox = build_server(config or SandboxConfig(), host, port)
    thread = threading.Thread(
        target=sandbox.serve_forever, name=f"kitsu-sandbox-{sandbox.port}", daemon=True
    )
    sandbox.thread = thread
    thread.start()
    return sandbox


def serve(
    config: SandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 8001,
    *,
    ready: Callable[[SandboxServer], None] | None = None,
) -> None:
    """Serve in this thread until interrupted (Ctrl-C); `ready` runs once it listens."""
    sandbox = build_server(config or SandboxConfig(), host, port)
    if ready is not None:
        ready(sandbox)
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.app.stopping.set()
        sandbox.server.server_close()
