"""Record search at scale: fill a record store with N records (through `records.store.put`, as the
publisher writes them), then time searches of each kind over its index. Prints figures; not a test.

    .venv/bin/python -m bench.records_search                 # 10,000 records in a temporary folder
    .venv/bin/python -m bench.records_search --records 1000 --dir /data/records

No cluster needed: the store is a folder, and search is the function the CLI calls.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta

from mmif import Mmif

from mmif_operator.records import lineage as LIN
from mmif_operator.records import search as S
from mmif_operator.records import store

APPS = ("http://apps.clams.ai/whisper-wrapper/v8", "http://apps.clams.ai/swt-detection/v7.1")
TAGS = ("internal-research", "public-domain", "embargo-2030", "broadcast-only")


def mmif_for(n: int) -> bytes:
    """A small valid MMIF, distinct per record (its document location)."""
    doc = Mmif(
        {
            "metadata": {"mmif": "http://mmif.clams.ai/1.0.0"},
            "documents": [
                {
                    "@type": "http://mmif.clams.ai/vocabulary/VideoDocument/v1",
                    "properties": {
                        "id": "d1",
                        "mime": "video/mp4",
                        "location": f"file:///data/media/tape-{n:06d}.mp4",
                    },
                }
            ],
            "views": [],
        }
    )
    return doc.serialize().encode()


def fill(root: str, count: int) -> float:
    started = time.perf_counter()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(count):
        data = mmif_for(n)
        sha = hashlib.sha256(data).hexdigest()
        pub = LIN.Publication(
            run_name=f"run-{n // 100}",
            run_namespace="oral-history",
            run_uid=f"uid-{n // 100}",
            item_index=n % 100,
            item_name=f"tape-{n:06d}",
            pipeline_name="transcribe",
            pipeline_generation=1,
            decision="Pass",
            reviewer="alice",
            comment=None,
            decided_at=(base + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            legal_tags=(TAGS[n % len(TAGS)],),
        )
        views = [{"view": "v_0", "step": "asr", "app": APPS[n % 2], "appVersion": None, "parameters": {}}]
        inputs = [
            LIN.Input(
                f"media/tape-{n:06d}.mp4", "video/mp4", hashlib.sha256(f"tape-{n}".encode()).hexdigest()
            )
        ]
        doc = LIN.lineage(
            pub, sha256=sha, size=len(data), path=store.object_path(sha), inputs=inputs, views=views
        )
        store.put(root, data, doc)
    return time.perf_counter() - started


def timed(root: str, query: S.Query, repeat: int = 5) -> tuple[float, float, int]:
    times = []
    found = 0
    for _ in range(repeat):
        started = time.perf_counter()
        found = len(S.search(root, query))
        times.append(time.perf_counter() - started)
    return statistics.median(times), max(times), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--dir", default=None, help="the store folder (default: a new temporary one)")
    args = parser.parse_args()
    root = args.dir or tempfile.mkdtemp(prefix="records-bench-")
    os.makedirs(root, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(f"records search benchmark: {args.records} records in {root}")
    print(f"commit {commit}; {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"fill: {fill(root, args.records):.1f} s ({args.records} records through store.put)")
    index_mb = os.path.getsize(os.path.join(root, store.INDEX)) / 1e6
    print(f"index: {index_mb:.1f} MB")
    middle = args.records // 2
    queries = {
        "input (sha256)": S.Query(input=hashlib.sha256(f"tape-{middle}".encode()).hexdigest()),
        "input (location)": S.Query(input=f"tape-{middle:06d}"),
        "app": S.Query(app="whisper", limit=0),
        "legal tag": S.Query(legal_tag="embargo-2030", limit=0),
        "run": S.Query(run=f"run-{middle // 100}"),
        "time window (1 day)": S.Query(
            since=datetime(2026, 1, 3, tzinfo=UTC), until=datetime(2026, 1, 4, tzinfo=UTC), limit=0
        ),
        "everything, newest 100": S.Query(),
    }
    print(f"{'query':<24} {'median s':>9} {'max s':>7} {'found':>6}")
    for name, query in queries.items():
        median, worst, found = timed(root, query)
        print(f"{name:<24} {median:>9.3f} {worst:>7.3f} {found:>6}")


if __name__ == "__main__":
    main()
