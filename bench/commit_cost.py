"""Cost of one request-log commit (16 rows) by the event-loop appender, and of the alternatives measured beside it.

One process, idle otherwise: CPU (user+system) and wall time per commit, variants alternating, ``--rounds``
rounds of ``--commits`` commits each; medians, and each variant's ratio to the first one of its group (same
round). What the loaded server pays is higher (cold caches): see ``bench/serving.py``.

SQLite (each variant on its own fresh database, pre-filled):
  current            the appender as shipped (no index on ts, a checkpoint every CHECKPOINT_EVERY commits)
  with-ts-index      plus the ix_predictions_ts index the table had before
  checkpoint-every-5 the previous checkpoint interval
PostgreSQL (one schema, one connection each):
  copy_in            the appender as shipped: COPY straight on libpq
  psycopg-copy       the same COPY through psycopg's cursor.copy (before)
  json-insert        INSERT ... SELECT FROM json_populate_recordset($1) prepared: one round trip (not adopted)

    .venv/bin/python bench/commit_cost.py              # writes bench/results/commit_cost.md
    .venv/bin/python bench/commit_cost.py --no-pg --rounds 1 --commits 200
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.requestlog import FEATURES, PG_BASE, _cpu
from driftwatch.store import Store, utcnow
from driftwatch.store import appender as A
from service.app import new_request_ids

ROWS = 16
PREFILL = 3000  # commits before measuring: a table of some size, warm statement caches


def rows() -> list[dict]:
    ts = utcnow()
    return [{"request_id": rid, "ts": ts, "model_name": "loan", "model_version": "v1", "features": dict(FEATURES),
             "prediction": 1, "probabilities": [0.3, 0.7], "latency_ms": 3.2} for rid in new_request_ids(ROWS)]


# -- SQLite -------------------------------------------------------------------
def sqlite_variant(name: str, workdir: Path) -> Callable[[list[dict]], None]:
    path = workdir / f"{name}.db"
    store = Store(f"sqlite:///{path}")
    store.create_all()
    if name == "with-ts-index":
        with store.engine.begin() as c:
            c.exec_driver_sql("CREATE INDEX ix_predictions_ts ON predictions (ts)")
    app = A.SQLiteAppender(store, checkpoint_every=5 if name == "checkpoint-every-5" else A.CHECKPOINT_EVERY)

    def commit(batch: list[dict]) -> None:
        app.append(batch)
        if app.checkpoint_due:  # the service runs it on the writer thread; same process, same CPU
            app.checkpoint()

    for _ in range(PREFILL):
        commit(rows())
    return commit


# -- PostgreSQL ---------------------------------------------------------------
async def pg_variant(name: str, store: Store) -> Callable[[list[dict]], Awaitable[None]]:
    import orjson
    import psycopg

    app = A.PostgresAppender(store)
    cargs, ckw = app.connect_args
    conn = await psycopg.AsyncConnection.connect(*cargs, autocommit=True, **ckw)
    sql = f"COPY predictions ({', '.join(A.COLUMNS)}) FROM STDIN"
    cols = ", ".join(A.COLUMNS)
    json_sql = f"INSERT INTO predictions ({cols}) SELECT {cols} FROM json_populate_recordset(NULL::predictions, $1::json)"

    async def copy_in(batch: list[dict]) -> None:
        await A.copy_in(conn.pgconn, sql.encode(), A.copy_text(batch))

    async def psycopg_copy(batch: list[dict]) -> None:
        async with conn.cursor() as cur, cur.copy(sql) as cp:
            await cp.write(A.copy_text(batch))

    async def json_insert(batch: list[dict]) -> None:
        pg, loop = conn.pgconn, asyncio.get_running_loop()
        pg.send_query_prepared(b"dw_ins", [orjson.dumps(batch)], None)
        res = await A._next_result(pg, pg.socket, loop)
        if res is None or res.status != psycopg.pq.ExecStatus.COMMAND_OK:
            raise psycopg.DatabaseError(A._message(res, "insert failed"))
        while await A._next_result(pg, pg.socket, loop) is not None:
            pass

    if name == "json-insert":
        conn.pgconn.prepare(b"dw_ins", json_sql.encode(), None)
    fn = {"copy_in": copy_in, "psycopg-copy": psycopg_copy, "json-insert": json_insert}[name]
    for _ in range(200):
        await fn(rows())
    return fn


# -- runner -------------------------------------------------------------------
def measure_sync(fn, commits: int) -> tuple[float, float]:
    batches = [rows() for _ in range(commits)]
    c0, t0 = _cpu(), time.perf_counter()
    for b in batches:
        fn(b)
    return (_cpu() - c0) / commits * 1e6, (time.perf_counter() - t0) / commits * 1e6


async def measure_async(fn, commits: int) -> tuple[float, float]:
    batches = [rows() for _ in range(commits)]
    c0, t0 = _cpu(), time.perf_counter()
    for b in batches:
        await fn(b)
    return (_cpu() - c0) / commits * 1e6, (time.perf_counter() - t0) / commits * 1e6


def table(group: str, names: list[str], results: dict[str, list[tuple[float, float]]]) -> list[str]:
    base = results[names[0]]
    out = []
    for n in names:
        cpu = statistics.median(r[0] for r in results[n])
        wall = statistics.median(r[1] for r in results[n])
        ratio = statistics.median(r[0] / b[0] for r, b in zip(results[n], base))
        out.append(f"| {group} | {n} | {cpu:.0f} | {wall:.0f} | {ratio:.2f}× |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--commits", type=int, default=1000, help="commits per variant per round")
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "commit_cost.md")
    args = ap.parse_args(argv)
    lines = [f"# Request-log commit cost ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)", "",
             f"Command: `.venv/bin/python bench/commit_cost.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
             "", f"{args.rounds} rounds x {args.commits} commits of {ROWS} rows per variant, alternating; medians; "
             "ratio = CPU of the variant / CPU of the first variant of its store, per round.", "",
             "| store | variant | CPU µs/commit | wall µs/commit | CPU ratio |", "|---|---|---:|---:|---:|"]

    names = ["current", "with-ts-index", "checkpoint-every-5"]
    with tempfile.TemporaryDirectory(prefix="dw-commit-cost-") as d:
        fns = {n: sqlite_variant(n, Path(d)) for n in names}
        res: dict[str, list] = {n: [] for n in names}
        for rnd in range(args.rounds):
            for n in (names if rnd % 2 == 0 else names[::-1]):
                res[n].append(measure_sync(fns[n], args.commits))
                print(f"round {rnd + 1} sqlite {n}: {res[n][-1][0]:.0f} µs CPU, {res[n][-1][1]:.0f} µs wall", flush=True)
        lines += table("SQLite", names, res)

    if not args.no_pg:
        import uvloop
        from sqlalchemy import create_engine

        eng = create_engine(PG_BASE)
        with eng.begin() as c:
            c.exec_driver_sql("DROP SCHEMA IF EXISTS bench_commit_cost CASCADE")
            c.exec_driver_sql("CREATE SCHEMA bench_commit_cost")
        store = Store(f"{PG_BASE}?options=-csearch_path%3Dbench_commit_cost")
        store.create_all()
        pg_names = ["copy_in", "psycopg-copy", "json-insert"]

        async def run_pg() -> dict[str, list]:
            fns = {n: await pg_variant(n, store) for n in pg_names}
            out: dict[str, list] = {n: [] for n in pg_names}
            for rnd in range(args.rounds):
                for n in (pg_names if rnd % 2 == 0 else pg_names[::-1]):
                    out[n].append(await measure_async(fns[n], args.commits))
                    print(f"round {rnd + 1} postgresql {n}: {out[n][-1][0]:.0f} µs CPU, {out[n][-1][1]:.0f} µs wall",
                          flush=True)
            return out

        try:
            lines += table("PostgreSQL", pg_names, uvloop.run(run_pg()))
        finally:
            store.dispose()
            with eng.begin() as c:
                c.exec_driver_sql("DROP SCHEMA IF EXISTS bench_commit_cost CASCADE")
            eng.dispose()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-8:]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
