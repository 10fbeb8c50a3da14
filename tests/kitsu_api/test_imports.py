from __future__ import annotations

import os
import subprocess
import sys

CHECK = (
    "import kitsu_sync.kitsu_api, sys; "
    "leaked = sorted(m for m in sys.modules if m.startswith('django')); "
    "assert not leaked, leaked"
)


def test_kitsu_api_imports_without_django() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}

    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
