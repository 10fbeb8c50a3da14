"""Container health probe (docker-compose.yml): GET /health/ from the local gunicorn.

Exits 0 on HTTP 200 and 1 otherwise, printing why (Docker keeps the output with the health
state: `docker inspect --format '{{json .State.Health}}' <container>`). Standard library only.
The probe connects to 127.0.0.1, which a production ALLOWED_HOSTS rightly leaves out, so it
sends a Host header Django accepts: the first ALLOWED_HOSTS entry.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/health/"
TIMEOUT_SECONDS = 10


def probe_host(allowed_hosts: str) -> str:
    first = allowed_hosts.split(",")[0].strip()
    # ".example.org" allows example.org itself as well as its subdomains.
    host = first.lstrip(".")
    return "localhost" if host in ("", "*") else host


def main() -> int:
    url = os.environ.get("HEALTH_URL", DEFAULT_URL)
    if not url.startswith(("http://", "https://")):
        sys.stderr.write(f"HEALTH_URL must be an http(s) URL, got {url!r}\n")
        return 1
    host = probe_host(os.environ.get("ALLOWED_HOSTS", ""))
    request = urllib.request.Request(url, headers={"Host": host})  # noqa: S310 (http(s) only)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            body = response.read().decode("utf-8", "replace")
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read().decode("utf-8", "replace"), exc.code
    except (urllib.error.URLError, OSError) as exc:
        sys.stderr.write(f"unhealthy: {url} did not answer ({exc})\n")
        return 1
    sys.stdout.write(f"HTTP {status}: {body}\n")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
