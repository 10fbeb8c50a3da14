"""Mapping datasets: `kitsu_mappings_update` on full-size files (about 17,000 Anime-Lists
entries and 40,000 Fribb records), its wall time and peak memory, and what resolving a cached
id then costs.

    .venv/bin/python -m bench.mapping_datasets [--anime-lists 17000] [--fribb 40000]
        [--resolutions 2000]

The files are generated (deterministic, in both datasets' real shapes, with the same share of
mapping-lists, sentinel TheTVDB ids, absolute numbering and multi-valued ids as the published
files), since neither dataset may be shipped. The load runs as the command would, in a child
process (`manage.py kitsu_mappings_update --from-file ...`), whose peak resident memory is read
from /proc while it runs. Targets: under 30 s and under 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

from bench.harness import (
    ROOT,
    load_note,
    machine_description,
    markdown_table,
    prepare_database,
    save_results,
)
from kitsu_sync.media_servers import MediaIds
from kitsu_sync.models import Anime, MappingDataset, MappingKey, MappingRecord
from kitsu_sync.services.resolve import Match, resolve

ANIME_LISTS = 17_000
FRIBB = 40_000
RESOLUTIONS = 2_000
TARGET_SECONDS = 30
TARGET_MB = 200
SENTINELS = ("movie", "OVA", "hentai", "tv special", "music video", "web", "other", "")


def anime_lists_file(path: Path, count: int, rng: random.Random) -> None:
    """`count` entries: series split into seasons and cours, specials, movies, mapping-lists."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<anime-list>"]
    for anidb in range(1, count + 1):
        series = 70_000 + anidb // 4
        kind = rng.random()
        if kind < 0.15:
            tvdb, season, offset = rng.choice(SENTINELS), "", ""
        elif kind < 0.20:
            tvdb, season, offset = series, "a", ""
        else:
            tvdb, season = series, rng.choice(("1", "1", "2", "3", "0"))
            offset = rng.choice(("", "", "", "12", "13", "24"))
        mappings = ""
        if rng.random() < 0.25:
            pairs = ";".join(f"{e}-{e + 1}" for e in range(1, rng.randint(2, 6)))
            mappings = (
                "<mapping-list>"
                f'<mapping anidbseason="0" tvdbseason="0">;{pairs};</mapping>'
                f'<mapping anidbseason="1" tvdbseason="1" start="10" end="17" offset="-1"/>'
                "</mapping-list>"
            )
        tmdb = "" if kind < 0.2 else str(30_000 + anidb)
        lines.append(
            f'  <anime anidbid="{anidb}" tvdbid="{tvdb}" defaulttvdbseason="{season}" '
            f'episodeoffset="{offset}" tmdbtv="{tmdb}" tmdbseason="{season}" tmdboffset="{offset}" '
            f'tmdbid="" imdbid=""><name>Title {anidb}</name>{mappings}'
            "<supplemental-info><studio>Studio</studio></supplemental-info></anime>"
        )
    lines.append("</anime-list>")
    path.write_text("\n".join(lines), encoding="utf-8")


def fribb_file(path: Path, count: int, rng: random.Random) -> None:
    """`count` records in the list's current shape, pretty-printed as the published file."""
    records: list[dict[str, Any]] = []
    for n in range(1, count + 1):
        record: dict[str, Any] = {
            "type": rng.choice(("TV", "TV", "MOVIE", "OVA", "ONA", "SPECIAL")),
            "anidb_id": n,
            "anilist_id": 100_000 + n,
            "animecountdown_id": 200_000 + n,
            "anime-planet_id": f"title-{n}",
            "anisearch_id": 300_000 + n,
            "imdb_id": [f"tt{1_000_000 + n}"] + ([f"tt{2_000_000 + n}"] if n % 900 == 0 else []),
            "kitsu_id": 400_000 + n,
            "livechart_id": 500_000 + n,
            "mal_id": 600_000 + n,
            "simkl_id": 700_000 + n,
        }
        if record["type"] == "MOVIE":
            record["themoviedb_id"] = {"movie": [800_000 + n]}
        else:
            record["themoviedb_id"] = {"tv": 30_000 + n}
            record["tvdb_id"] = 70_000 + n // 4
            record["season"] = {"tvdb": 1 + n % 3, "tmdb": 1 + n % 3}
            if n % 5 == 0:
                record["episode_offset"] = {"tvdb": 12, "tmdb": 12}
        records.append(record)
    path.write_text(json.dumps(records, indent=2, separators=(",", " : ")), encoding="utf-8")


def _peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory so far (VmHWM: counted from its exec, unlike
    wait4's ru_maxrss, which keeps the forking parent's size), or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def load_in_child(paths: list[Path]) -> dict[str, Any]:
    """`kitsu_mappings_update --from-file ...` in a child process: wall time and peak RSS
    (read from /proc while it runs: the peak only grows, so the last reading is the peak)."""
    command = [sys.executable, str(ROOT / "manage.py"), "kitsu_mappings_update"]
    for path in paths:
        command += ["--from-file", str(path)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE)
    peak = 0.0
    while process.poll() is None:
        reading = _peak_rss_mb(process.pid)
        peak = max(peak, reading or 0.0)
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    output = process.stdout.read().decode() if process.stdout else ""
    if process.returncode != 0:
        raise RuntimeError(f"kitsu_mappings_update failed ({process.returncode}): {output}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak, 1), "output": output}


def resolution_cost(count: int, fribb: int) -> dict[str, Any]:
    """Resolve `count` MyAnimeList ids and TheTVDB seasons from the loaded data: queries and
    time per resolution (their anime stored first, so that no Kitsu request is made)."""
    rng = random.Random(7)
    wanted = [rng.randint(1, fribb) for _ in range(count)]
    Anime.objects.bulk_create(
        [Anime(kitsu_id=400_000 + n, title=f"Title {n}", episode_count=100) for n in set(wanted)],
        ignore_conflicts=True,
    )
    matched = 0
    reset_queries()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        for n in wanted:
            matched += isinstance(resolve(MediaIds(mal=600_000 + n), season=1, episode=3), Match)
    seconds = time.perf_counter() - started
    return {
        "resolutions": count,
        "matched": matched,
        "queries_per_resolution": round(len(queries.captured_queries) / count, 2),
        "ms_per_resolution": round(seconds * 1000 / count, 2),
    }


def run(*, anime_lists: int, fribb: int, resolutions: int) -> dict[str, Any]:
    MappingKey.objects.all()._raw_delete(connection.alias)
    MappingRecord.objects.all()._raw_delete(connection.alias)
    MappingDataset.objects.all().delete()
    rng = random.Random(2026)
    with tempfile.TemporaryDirectory(prefix="kitsu-bench-mappings-") as folder:
        xml, json_path = (
            Path(folder) / "anime-list-master.xml",
            Path(folder) / "anime-list-full.json",
        )
        anime_lists_file(xml, anime_lists, rng)
        fribb_file(json_path, fribb, rng)
        sizes = {
            "xml_mb": round(xml.stat().st_size / 2**20, 1),
            "json_mb": round(json_path.stat().st_size / 2**20, 1),
        }
        first = load_in_child([xml, json_path])
        again = load_in_child([xml, json_path])
    return {
        "anime_lists": anime_lists,
        "fribb": fribb,
        **sizes,
        "load": first,
        "unchanged_reload": again,
        "records": MappingRecord.objects.count(),
        "keys": MappingKey.objects.count(),
        "resolution": resolution_cost(resolutions, fribb),
    }


def report(results: dict[str, Any]) -> str:
    load, resolution = results["load"], results["resolution"]
    return markdown_table(
        (
            "Anime-Lists entries",
            "Fribb records",
            "files MB",
            "records + keys stored",
            "load s (target < 30)",
            "peak RSS MB (target < 200)",
            "same files again s",
            "queries per cached resolution",
            "ms per resolution",
        ),
        [
            (
                f"{results['anime_lists']:,}",
                f"{results['fribb']:,}",
                f"{results['xml_mb']} + {results['json_mb']}",
                f"{results['records']:,} + {results['keys']:,}",
                f"**{load['seconds']}**",
                f"**{load['peak_rss_mb']}**",
                results["unchanged_reload"]["seconds"],
                resolution["queries_per_resolution"],
                resolution["ms_per_resolution"],
            )
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--anime-lists", type=int, default=ANIME_LISTS)
    parser.add_argument("--fribb", type=int, default=FRIBB)
    parser.add_argument("--resolutions", type=int, default=RESOLUTIONS)
    options = parser.parse_args(argv)
    prepare_database()
    before = machine_description()
    results = run(
        anime_lists=options.anime_lists, fribb=options.fribb, resolutions=options.resolutions
    )
    after = machine_description()
    save_results("mapping_datasets", {"machine": before, "machine_after": after, **results})
    print("kitsu_mappings_update on generated full-size files, then cached resolutions:\n")
    print(report(results))
    load = results["load"]
    met = load["seconds"] < TARGET_SECONDS and load["peak_rss_mb"] < TARGET_MB
    print(f"\ntargets (< {TARGET_SECONDS} s, < {TARGET_MB} MB): {'met' if met else '**missed**'}")
    print(load_note(before, after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
