"""Ingest benchmark: rows per second the monitor reads from the store and windows (SQLite).

Fills a fresh SQLite store (WAL, as ``driftwatch serve`` writes it) with
demo-shaped prediction rows (nine features as JSON, a prediction, class
probabilities), then times ``monitors.source.Source.poll`` consuming them the
way the monitor loop does: one poll per chunk of newly logged rows, each
followed by taking the current window. Target: >= 20,000 rows/s.

    .venv/bin/python bench/ingest.py [--rows 200000] [--chunk 5000] [--window 1000]

Writes bench/results/ingest.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from driftwatch.store import Store  # noqa: E402
from models.datagen import agrawal  # noqa: E402
from monitors.source import Source  # noqa: E402

TARGET = 20_000


def fill(store: Store, n: int, seed: int = 0) -> dt.datetime:
    """``n`` rows one millisecond apart, the last one now; returns the last ``ts``."""
    X, y = agrawal(n, seed=seed)
    records = X.to_dict("records")
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    t0 = dt.datetime.now(dt.timezone.utc) - dt.timedelta(milliseconds=n - 1)
    rows = [{"request_id": uuid.uuid4().hex, "ts": t0 + dt.timedelta(milliseconds=i), "model_name": "bench",
             "model_version": "v1", "features": rec, "prediction": int(y[i]),
             "probabilities": [round(1 - p[i], 6), round(p[i], 6)], "latency_ms": 1.0}
            for i, rec in enumerate(records)]
    for i in range(0, n, 5000):
        store.insert_predictions(rows[i:i + 5000])
    return rows[-1]["ts"]


def measure(store: Store, n: int, chunk: int, window: int, window_seconds: float, now: float) -> float:
    """Seconds to consume ``n`` rows in polls of ``chunk`` new rows each (the monitor's clock frozen at ``now``)."""
    src = Source(store, window_size=window, window_seconds=window_seconds, max_rows_per_poll=chunk,
                 clock=lambda: now)
    src.follow(("bench", "v1"))
    t = time.perf_counter()
    consumed = 0
    while consumed < n:
        got = src.poll().new
        if got == 0:
            break
        consumed += got
        src.window_rows()
    elapsed = time.perf_counter() - t
    assert consumed == n, (consumed, n)
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--chunk", type=int, default=5000, help="new rows per poll")
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ingest.md")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db")
        store.create_all()
        t = time.perf_counter()
        last_ts = fill(store, a.rows).timestamp()
        print(f"filled {a.rows} rows in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        results = {}
        for label, seconds in ((f"count window ({a.window:,} rows)", 0.0),
                               (f"time window ({a.window / 1000:g} s = {a.window:,} rows at 1,000 rows/s)",
                                a.window / 1000)):
            runs = [measure(store, a.rows, a.chunk, a.window, seconds, last_ts) for _ in range(a.repeats)]
            results[label] = a.rows / statistics.median(runs)
            print(f"{label}: {results[label]:,.0f} rows/s (runs: {', '.join(f'{r:.2f}s' for r in runs)})",
                  file=sys.stderr)
        store.dispose()
    lines = [
        "# Ingest: rows read from the store and windowed per second",
        "",
        (f"`{' '.join(['.venv/bin/python', 'bench/ingest.py', *sys.argv[1:]])}` — SQLite (WAL) store with "
         f"{a.rows:,} demo rows (9 features as JSON, prediction, probabilities); one `Source.poll()` per "
         f"{a.chunk:,} new rows, then the current window is taken. Median of {a.repeats} passes; "
         f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
         "2 cores shared with other work."),
        "",
        "| window | rows/s | target |",
        "|---|---:|---:|",
        *[f"| {k} | {v:,.0f} | ≥ {TARGET:,} |" for k, v in results.items()],
        "",
    ]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
