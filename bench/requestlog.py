"""Request-log cost per row: the event-loop fast path against the writer thread, on SQLite and PostgreSQL.

One process, one event loop (uvloop, as in the service), ``--concurrency``
requests of one row each written together per cycle (what one model call
answers), ``--cycles`` cycles. Both paths run in the same process one after
the other, alternating, ``--rounds`` times; the table gives medians and the
ratio fast/thread per round. CPU is the process's user+system time per row
(less noisy than wall time on a shared machine); wall is per cycle, i.e. how
long those requests waited for their commit.

    .venv/bin/python bench/requestlog.py                 # writes bench/results/requestlog.md
    .venv/bin/python bench/requestlog.py --no-pg --rounds 1 --cycles 200
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from driftwatch.store import Store, utcnow
from driftwatch.store.appender import appender_for
from service.app import new_request_ids
from service.requestlog import RequestLog
from service.spool import Spool

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FEATURES = {"salary": 71234.5, "commission": 0.0, "age": 41.0, "elevel": "2", "car": "7", "zipcode": "3",
            "hvalue": 150000.0, "hyears": 12.0, "loan": 300000.0}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _request(log: RequestLog) -> None:
    """What /predict does after the model call: one row per instance, then wait until it is durable."""
    ts = utcnow()
    rows = [{"request_id": rid, "ts": ts, "model_name": "loan", "model_version": "v1", "features": FEATURES,
             "prediction": 1, "probabilities": [0.3, 0.7], "latency_ms": 3.2} for rid in new_request_ids(1)]
    await log.write(rows)


async def _measure(store: Store, fast: bool, cycles: int, concurrency: int) -> dict[str, float]:
    log = RequestLog(store, Spool(tempfile.mkdtemp(prefix="dw-bench-spool-")),
                     appender=appender_for(store) if fast else None).start()
    try:
        for _ in range(20):  # warm up: connections, statement caches
            await asyncio.gather(*(_request(log) for _ in range(concurrency)))
        walls = []
        c0 = _cpu()
        for _ in range(cycles):
            t = time.perf_counter()
            await asyncio.gather(*(_request(log) for _ in range(concurrency)))
            walls.append(time.perf_counter() - t)
        cpu = _cpu() - c0
    finally:
        await log.aclose()
    return {"cpu_us_per_row": 1e6 * cpu / (cycles * concurrency), "wall_ms_per_cycle": 1e3 * statistics.median(walls)}


def _pg_store() -> Store | None:
    import psycopg
    try:
        with psycopg.connect(PG_BASE.replace("+psycopg", ""), autocommit=True, connect_timeout=2) as c:
            c.execute("DROP SCHEMA IF EXISTS bench_requestlog CASCADE")
            c.execute("CREATE SCHEMA bench_requestlog")
    except psycopg.Error:
        return None
    return Store(f"{PG_BASE}?options=-csearch_path%3Dbench_requestlog")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cycles", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=16, help="requests per cycle (one model call's worth)")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "requestlog.md")
    a = ap.parse_args(argv)
    import uvloop

    stores = {"SQLite": Store(f"sqlite:///{tempfile.mkdtemp(prefix='dw-bench-')}/store.db")}
    pg = None if a.no_pg else _pg_store()
    if pg is not None:
        stores["PostgreSQL"] = pg
    lines = [f"# Request-log cost per row ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)", "",
             f"Command: `.venv/bin/python bench/requestlog.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
             "", f"{a.rounds} rounds x {a.cycles} cycles of {a.concurrency} one-row requests; medians; "
             "ratio = fast path / writer thread, per round.", "",
             "| store | path | CPU µs/row | wait per cycle (ms) | CPU ratio fast/thread |", "|---|---|---:|---:|---:|"]
    for name, store in stores.items():
        store.create_all()
        runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for rnd in range(a.rounds):
            for fast in ((True, False) if rnd % 2 == 0 else (False, True)):
                r = uvloop.run(_measure(store, fast, a.cycles, a.concurrency))
                runs[fast].append(r)
                print(f"{name:10s} round {rnd + 1} {'fast  ' if fast else 'thread'} "
                      f"{r['cpu_us_per_row']:6.1f} µs/row  {r['wall_ms_per_cycle']:6.2f} ms/cycle", flush=True)
        ratios = [f["cpu_us_per_row"] / t["cpu_us_per_row"] for f, t in zip(runs[True], runs[False])]
        for fast in (True, False):
            cpu = statistics.median(r["cpu_us_per_row"] for r in runs[fast])
            wall = statistics.median(r["wall_ms_per_cycle"] for r in runs[fast])
            lines.append(f"| {name} | {'event loop (fast path)' if fast else 'writer thread'} | {cpu:.1f} | "
                         f"{wall:.2f} | {statistics.median(ratios):.2f}× |" if fast else
                         f"| {name} | writer thread | {cpu:.1f} | {wall:.2f} | |")
        store.dispose()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
