"""`python -m kitsu_sync.sandbox`: run the Kitsu sandbox without Django."""

from __future__ import annotations

import argparse
import sys

from kitsu_sync.sandbox.cli import add_arguments, config_from, describe
from kitsu_sync.sandbox.server import serve


def _say(line: str) -> None:
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kitsu_sync.sandbox", description=__doc__)
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        config = config_from(options)
    except ValueError as error:
        parser.error(str(error))
    serve(
        config,
        options["host"],
        options["port"],
        ready=lambda sandbox: describe(sandbox, _say),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
