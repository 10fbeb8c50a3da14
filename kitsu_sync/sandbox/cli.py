"""Command-line options shared by `python -m kitsu_sync.sandbox` and `manage.py kitsu_sandbox`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from kitsu_sync.sandbox.config import MEDIA_PATH, FaultRule, SandboxConfig
from kitsu_sync.sandbox.server import SandboxServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8001, help="port (0 picks a free one)")
    parser.add_argument("--users", type=int, default=3, help="seeded users (user 1 is the demo)")
    parser.add_argument("--entries", type=int, default=60, help="library entries per user")
    parser.add_argument("--catalog", type=int, default=None, help="anime in the catalog")
    parser.add_argument("--seed", type=int, default=1, help="data seed (same seed, same data)")
    parser.add_argument(
        "--auth-code",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="enable the authorization-code grant and authorize page (off, as on kitsu.app)",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to each response")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="JSON",
        help='a fault rule, e.g. \'{"kind": "status", "status": 503, "count": 2}\' (repeatable)',
    )
    parser.add_argument("--client-id", default="revenge-demo")
    parser.add_argument("--client-secret", default="revenge-demo-secret")
    parser.add_argument(
        "--media-url",
        default=MEDIA_PATH,
        metavar="PATH_OR_URL",
        help=f"where image URLs point: a path served by this sandbox (default {MEDIA_PATH}: "
        "generated pictures, works offline) or a host such as https://media.kitsu.app",
    )
    parser.add_argument("--log-requests", action="store_true", help="log one line per request")


def config_from(options: dict) -> SandboxConfig:
    """A SandboxConfig from parsed options; ValueError explains a bad value."""
    faults = []
    for raw in options.get("fault") or []:
        try:
            faults.append(FaultRule.from_dict(json.loads(raw)))
        except json.JSONDecodeError as error:
            raise ValueError(f"--fault {raw!r} is not JSON: {error}") from None
    return SandboxConfig(
        seed=options["seed"],
        users=options["users"],
        entries=options["entries"],
        catalog_size=options.get("catalog"),
        auth_code_enabled=options["auth_code"],
        client_id=options["client_id"],
        client_secret=options["client_secret"],
        latency_ms=options["latency_ms"],
        faults=tuple(faults),
        log_requests=options["log_requests"],
        media_url=options.get("media_url", MEDIA_PATH),
    )


def describe(sandbox: SandboxServer, write: Callable[[str], object]) -> None:
    """Tell a person where the sandbox is, how to log in, and how to point Revenge at it."""
    config = sandbox.config
    demo = sandbox.store.credentials()[0]
    write(f"Kitsu sandbox running at {sandbox.base_url}")
    write(f"  JSON:API   {sandbox.api_url}")
    write(f"  OAuth      {sandbox.oauth_url}")
    write(f"  Demo login {demo.email} (or {demo.slug}) / password {demo.password}")
    write(f"  Images     {sandbox.store.media_host}")
    write(f"  Other users: {sandbox.base_url}/__sandbox/users")
    flows = "password, refresh_token" + (", authorization_code" if config.auth_code_enabled else "")
    write(f"  Grants     {flows}")
    write("Point Revenge at it with these environment variables:")
    write(f"  KITSU_API_URL={sandbox.api_url}")
    write(f"  KITSU_OAUTH_URL={sandbox.oauth_url}")
    write(f"  KITSU_CLIENT_ID={config.client_id}")
    write(f"  KITSU_CLIENT_SECRET={config.client_secret}")
    write(f"  KITSU_AUTH_FLOW={'authorization_code' if config.auth_code_enabled else 'password'}")
    write("Press Ctrl-C to stop.")
