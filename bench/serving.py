"""Serving benchmark (issue 6): driftwatch /predict against plain BentoML and bare Starlette.

Every variant is a real server process on its own port, pinned to the first
CPU (``taskset``); wrk runs on the second one (``wrk -t1 -c16``, a Lua script
POSTing one JSON body of 1 or 100 instances, see ``bench/wrkload.py``).
Variants run one at a time, in rounds; each round runs every variant once, in
alternating order (forward, then reversed), so every A/B pair runs back to
back in every round. A target's ratio is computed per round and the median
over rounds is judged. After each run the rows logged by the run are counted
in the variant's store and compared with the 200 responses (exactly; the
script drains the requests in flight before it stops).

Variants (logistic regression unless named ``rf``; SQLite store unless ``pg``):

    driftwatch            driftwatch serve (validation + durable logging + metrics), 1 instance/request
    driftwatch-nolog      driftwatch serve --no-log
    driftwatch-100        driftwatch serve, 100 instances/request
    driftwatch-nosync     commits not synced to disk (SQLite ?synchronous=NORMAL; PostgreSQL synchronous_commit=off):
                          what the per-commit fsync costs (informational)
    bentoml-plain         default @bentoml.service/@bentoml.api, pydantic input, no logging (bench/baselines)
    starlette-bare        Starlette on uvicorn, same model, no validation, no logging (bench/baselines)
    driftwatch-rf         100-tree random forest, adaptive batching (default)
    driftwatch-rf-unbatched   the same with DRIFTWATCH_BATCH_MAX_SIZE=1
    driftwatch-pg, driftwatch-pg-100, driftwatch-pg-nosync, driftwatch-pg-rf, driftwatch-pg-rf-unbatched
                          the same on PostgreSQL

    .venv/bin/python bench/serving.py                 # 5 rounds x 10 s; writes bench/results/serving.{md,json}
    .venv/bin/python bench/serving.py --quick         # 1 round x 3 s (smoke test of the harness)
    .venv/bin/python bench/serving.py --only driftwatch,driftwatch-nolog,bentoml-plain --rounds 3
    .venv/bin/python bench/serving.py --only driftwatch --rounds 0 --profile driftwatch   # py-spy one run
    .venv/bin/python bench/serving.py --ref /tmp/old-copy --only driftwatch,ref-old-copy   # before/after a change

--quick writes bench/results/serving-quick.{md,json}, never the real table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.procs import Server, free_port
from bench.report import summarize, write_results
from bench.serving_plan import Variant, targets_for, variants_for
from bench.wrkload import lua_script, run_wrk

BIN = Path(sys.executable).parent
NOTES = [
    "A ratio is A/B of two variants run back to back in the same round; the table gives the median over rounds.",
    "Cost of a request = 1 / throughput at the same concurrency, so cost(100 instances) / cost(1) = "
    "req/s(1) / req/s(100).",
    "req/s = 2xx+non-2xx responses / time from the first request to the last response; the wrk script stops "
    "sending at the end and waits for the requests in flight, so 2xx is exact and compared with the rows logged.",
    "server CPU ms/req: user+system CPU of the server's whole process tree (all threads) per response, from /proc; "
    "less sensitive to other load on the machine than req/s.",
    "host steal %: share of the server CPU's time the hypervisor gave to other guests during the run (/proc/stat). "
    "A per-round ratio marked * had more than 5 % in either of its runs: it measured the host more than the code. "
    "A ratio says (unmarked rounds) when it is the median of the unmarked rounds only; that is done only while "
    "at least half the rounds are unmarked, else every round counts.",
]
PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass
class Store:
    key: str           # e.g. logreg-sqlite
    estimator: str
    data_dir: Path
    url: str           # SQLAlchemy URL
    kind: str          # sqlite | postgresql


# -- stores and models ---------------------------------------------------------
def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DRIFTWATCH_", "BENTOML_", "PROMETHEUS_MULTIPROC"))}
    env.update(BENTOML_DO_NOT_TRACK="True", PYTHONUNBUFFERED="1")
    return env


def pg_available() -> bool:
    try:
        from sqlalchemy import create_engine, text
        e = create_engine(PG_BASE, connect_args={"connect_timeout": 2})
        with e.connect() as c:
            c.execute(text("SELECT 1"))
        e.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means: no PostgreSQL here
        return False


def prepare_store(workdir: Path, estimator: str, kind: str, schema_prefix: str) -> Store:
    key = f"{estimator}-{'pg' if kind == 'postgresql' else 'sqlite'}"
    data_dir = workdir / key
    data_dir.mkdir(parents=True, exist_ok=True)
    if kind == "postgresql":
        from sqlalchemy import create_engine, text
        schema = f"{schema_prefix}_{estimator}"
        e = create_engine(PG_BASE)
        with e.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        e.dispose()
        url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{data_dir / 'driftwatch.db'}"
    env = {**_clean_env(), "DRIFTWATCH_DATA_DIR": str(data_dir), "DRIFTWATCH_DATABASE_URL": url,
           "BENTOML_HOME": str(data_dir / "bentoml")}
    proc = subprocess.run([str(BIN / "driftwatch"), "train", "--demo", "--estimator", estimator],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"training {key} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return Store(key, estimator, data_dir, url, kind)


class RowCounter:
    """Rows a run logged: ``id > max(id) before the run``; their distinct request ids."""

    def __init__(self, url: str):
        from driftwatch.store import Store as DWStore
        self.store = DWStore(url)

    def max_id(self) -> int:
        return self.store.max_prediction_id()

    def since(self, after_id: int) -> tuple[int, int]:
        from sqlalchemy import func, select

        from driftwatch.store import tables as T
        p = T.predictions
        q = select(func.count(), func.count(func.distinct(p.c.request_id))).where(p.c.id > after_id)
        with self.store.engine.connect() as c:
            n, distinct = c.execute(q).one()
        return int(n), int(distinct)


# -- bodies --------------------------------------------------------------------
def bodies() -> dict[int, str]:
    """JSON bodies of 1 and 100 demo instances (rows of the demo generator)."""
    from models.datagen import agrawal
    X, _ = agrawal(100, seed=7)
    recs = [{k: (round(float(v), 2) if not isinstance(v, str) else v) for k, v in r.items()}
            for r in X.to_dict("records")]
    return {1: json.dumps({"instances": recs[:1]}), 100: json.dumps({"instances": recs})}


# -- servers -------------------------------------------------------------------
def server_for(v: Variant, store: Store, workdir: Path, cpus: str | None) -> Server:
    port = free_port()
    home = workdir / "homes" / v.name  # own BENTOML_HOME (bentoml serve wipes its metrics dir) ...
    home.mkdir(parents=True, exist_ok=True)
    models = home / "models"           # ... seeing the store's models
    if not models.exists():
        models.symlink_to(store.data_dir / "bentoml" / "models", target_is_directory=True)
    url = store.url
    if v.no_sync:
        url = url.replace("?options=-csearch_path%3D", "?options=-csynchronous_commit%3Doff%20-csearch_path%3D") \
            if store.kind == "postgresql" else url + "?synchronous=NORMAL"
    env = {**_clean_env(), "DRIFTWATCH_DATA_DIR": str(store.data_dir), "DRIFTWATCH_DATABASE_URL": url,
           "BENTOML_HOME": str(home), "DRIFTWATCH_BENTOML_HOME": str(home), **v.env}
    cwd = ROOT
    if v.code is not None:  # an older copy of driftwatch/, service/, models/ (see --ref)
        env["PYTHONPATH"] = str(v.code)
        cwd = v.code
    if v.kind == "driftwatch":
        cmd = [str(BIN / "driftwatch"), "serve", "--port", str(port), *v.args]
    elif v.kind == "bentoml":
        cmd = [sys.executable, "-m", "bentoml", "serve", "bench.baselines.bento_plain:PlainBento",
               "--host", "127.0.0.1", "--port", str(port)]
    elif v.kind == "starlette":
        cmd = [sys.executable, "-m", "uvicorn", "bench.baselines.starlette_bare:app", "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log", "--log-level", "warning"]
    else:
        raise ValueError(v.kind)
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    return Server(v.name, cmd, env, cwd, workdir / f"{v.name}.log", port)


def check_response(v: Variant, out: dict) -> None:
    n = len(out.get("predictions", []))
    if n != v.instances:
        raise RuntimeError(f"{v.name}: {n} predictions for {v.instances} instances: {str(out)[:300]}")
    if v.kind == "driftwatch" and len(set(out.get("request_ids", []))) != v.instances:
        raise RuntimeError(f"{v.name}: request ids are not one per instance: {out.get('request_ids')}")


SCRAPED = ("driftwatch_batch_size_sum", "driftwatch_batch_size_count",
           "driftwatch_request_log_commit_seconds_sum", "driftwatch_request_log_commit_seconds_count")


def scrape(url: str) -> dict[str, float]:
    """The service's batching and commit counters (summed over labels), from its ``/metrics``."""
    import urllib.request
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    got = dict.fromkeys(SCRAPED, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in got:
            got[name] += float(line.rsplit(" ", 1)[1])
    return got


def service_stats(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    """Instances per model call and mean request-log commit time (ms) between two scrapes."""
    d = {k: after[k] - before[k] for k in SCRAPED}
    calls, commits = d["driftwatch_batch_size_count"], d["driftwatch_request_log_commit_seconds_count"]
    return {"per_call": d["driftwatch_batch_size_sum"] / calls if calls else None,
            "commit_ms": 1e3 * d["driftwatch_request_log_commit_seconds_sum"] / commits if commits else None}


def pinning() -> tuple[str | None, str | None, str]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2 and shutil.which("taskset"):
        return str(cpus[0]), ",".join(map(str, cpus[1:])), f"servers on CPU {cpus[0]}, wrk on CPU {cpus[1:]}"
    return None, None, f"no pinning ({len(cpus)} CPU)"


def cpu_steal(cpus: str | None) -> tuple[int, int]:
    """(steal, total) jiffies of these CPUs ("0", "1,2"; None: all) from /proc/stat: time the hypervisor gave
    to other guests while ours wanted to run. A run with much steal measured the host, not the code."""
    want = {f"cpu{c}" for c in cpus.split(",")} if cpus else {"cpu"}
    steal = total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        f = line.split()
        if f and f[0] in want:
            vals = [int(x) for x in f[1:9]]  # user nice system idle iowait irq softirq steal
            steal += vals[7]
            total += sum(vals)
    return steal, total


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def py_spy(pid: int, seconds: float, out: Path, extra: list[str]) -> subprocess.Popen:
    exe = shutil.which("py-spy") or str(BIN / "py-spy")
    return subprocess.Popen([exe, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "250", "-f", "raw",
                             "-o", str(out), "--nonblocking", "--threads", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 round of 3 s: smoke-test the harness")
    ap.add_argument("--rounds", type=int, help="rounds (every variant once per round) [5; --quick 1]")
    ap.add_argument("--duration", type=float, help="seconds per run [10; --quick 3]")
    ap.add_argument("--warmup", type=float, help="seconds of discarded load per variant before round 1 [3; --quick 1]")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--only", help="comma-separated variant names")
    ap.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL variants")
    ap.add_argument("--workdir", type=Path, help="data dirs and logs [a fresh temporary directory]")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--profile", help="py-spy record this variant's worker during one extra run; "
                                      "writes <out>/profile-<variant>.txt (summary) and .raw (py-spy)")
    ap.add_argument("--profile-args", default="--gil",
                    help="extra py-spy record options [--gil: only the thread holding the GIL, i.e. where the "
                         "Python CPU time goes; '' samples every active thread]")
    ap.add_argument("--ref", type=Path, action="append",
                    help="a copy of the code (a directory holding driftwatch/, service/, models/): adds the variants "
                         "ref-<dir name> and ref-<dir name>-nolog run from it, to compare before/after a change "
                         "(repeatable)")
    ap.add_argument("--ref-store", default="logreg-sqlite", choices=["logreg-sqlite", "logreg-pg"],
                    help="the store the --ref variants use [logreg-sqlite]")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results",
                    help="where serving.md / serving.json go [bench/results]")
    args = ap.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    duration = args.duration or (3.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    drain = 1.0 if args.quick else 2.0
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2

    with_pg = not args.no_pg and pg_available()
    variants = variants_for(with_pg)
    for i, ref in enumerate(args.ref or []):
        ref = ref.resolve()
        name = f"ref-{ref.name}"
        variants[1 + 2 * i:1 + 2 * i] = [
            Variant(name, "driftwatch", args.ref_store, f"driftwatch from {ref}", code=ref),
            Variant(f"{name}-nolog", "driftwatch", args.ref_store, f"--no-log from {ref}", logs=False,
                    args=["--no-log"], code=ref)]
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = set(wanted) - {v.name for v in variants}
        if unknown:
            print(f"unknown variants: {sorted(unknown)}", file=sys.stderr)
            return 2
        variants = [v for v in variants if v.name in wanted]
    server_cpus, wrk_cpus, pin_note = pinning()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="driftwatch-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)
    log(f"work dir {workdir}; {pin_note}; PostgreSQL {'yes' if with_pg else 'no'}; load {loadavg()}")

    schema_prefix = f"bench_serving_{os.getpid()}"
    stores: dict[str, Store] = {}
    for key in sorted({v.store for v in variants}):
        est, kind = key.split("-")
        log(f"training {est} ({kind})")
        stores[key] = prepare_store(workdir, est, "postgresql" if kind == "pg" else "sqlite", schema_prefix)
    body = bodies()
    scripts = {}
    for n in {v.instances for v in variants}:
        for d in {duration, warmup}:
            p = workdir / f"post{n}-{d:g}s.lua"
            p.write_text(lua_script(body[n], "/predict", d))
            scripts[(n, d)] = str(p)

    servers = {v.name: server_for(v, stores[v.store], workdir, server_cpus) for v in variants}
    counters = {k: RowCounter(s.url) for k, s in stores.items()}
    runs: list[dict[str, Any]] = []
    load_before = None
    try:
        for s in servers.values():
            s.start()
        for v in variants:
            out = servers[v.name].wait_ready("/predict", body[v.instances].encode())
            check_response(v, out)
        log("all servers ready; warming up")
        for v in variants:
            if warmup > 0:
                run_wrk(servers[v.name].url, scripts[(v.instances, warmup)], duration=warmup, drain=drain,
                        connections=args.connections, cpus=wrk_cpus)
        load_before = loadavg()
        log(f"load average before the runs: {load_before}")
        for rnd in range(rounds):
            order = variants if rnd % 2 == 0 else list(reversed(variants))
            for v in order:
                counter = counters[stores[v.store].key] if v.logs else None
                before = counter.max_id() if counter else None
                scraped0 = scrape(servers[v.name].url) if v.kind == "driftwatch" else None
                cpu0, t0 = servers[v.name].cpu_seconds(), time.monotonic()
                steal0 = cpu_steal(server_cpus)
                res, text = run_wrk(servers[v.name].url, scripts[(v.instances, duration)], duration=duration,
                                    drain=drain, connections=args.connections, cpus=wrk_cpus)
                run = {"variant": v.name, "round": rnd, **{k: res.get(k) for k in (
                    "rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "sent", "received", "ok", "non2xx",
                    "elapsed_s", "socket_errors")}, "load": loadavg(),
                       # CPU seconds of the server per second of load (the drain after the run is idle)
                       "server_cpu": (servers[v.name].cpu_seconds() - cpu0) / (res.get("elapsed_s") or (time.monotonic() - t0))}
                run["cpu_ms"] = 1e3 * run["server_cpu"] / run["rps"] if run["rps"] else None
                steal1 = cpu_steal(server_cpus)
                run["steal_pct"] = 100.0 * (steal1[0] - steal0[0]) / max(1, steal1[1] - steal0[1])
                if scraped0 is not None:  # instances per model call (adaptive batching), mean commit time
                    run.update(service_stats(scraped0, scrape(servers[v.name].url)))
                if counter:
                    run["rows"], run["distinct_ids"] = counter.since(before)
                    run["expected_rows"] = (res.get("ok") or 0) * v.instances
                runs.append(run)
                log(f"round {rnd + 1}/{rounds} {v.name:28s} {run['rps']:8.1f} req/s  p50 {run['p50_ms']:7.1f} ms  "
                    f"p99 {run['p99_ms']:7.1f} ms  {run.get('per_call') or 0:5.1f}/call  commit {run.get('commit_ms') or 0:5.2f} ms  cpu {run['server_cpu']:4.0%} {run['cpu_ms'] or 0:5.2f} ms/req  steal {run['steal_pct']:4.1f}%  non-2xx {run['non2xx']}"
                    + (f"  rows {run['rows']}/{run['expected_rows']}" if counter else ""))
        if args.profile:
            s = servers[args.profile]
            pid = [p for p in s.pids() if "worker" in _cmdline(p) or s.name.startswith("starlette")][-1]
            args.out.mkdir(parents=True, exist_ok=True)
            out = args.out / f"profile-{args.profile}.raw"
            v = next(v for v in variants if v.name == args.profile)
            prof = py_spy(pid, duration, out, args.profile_args.split())
            run_wrk(s.url, scripts[(v.instances, duration)], duration=duration, drain=drain,
                    connections=args.connections, cpus=wrk_cpus)
            prof.wait(timeout=60)
            from bench.pyspy_summary import summarize as pyspy_summary
            summary_path = args.out / f"profile-{args.profile}.txt"
            summary_path.parent.mkdir(parents=True, exist_ok=True)
            summary_path.write_text(f"py-spy record of {args.profile} (pid {pid}) under wrk -c{args.connections}, "
                                    f"{duration:g} s\n\n" + pyspy_summary(out.read_text(), 60))
            log(f"py-spy profile of {args.profile} (pid {pid}): {out}; summary {summary_path}")
    finally:
        for s in servers.values():
            s.stop()
        for c in counters.values():
            c.store.engine.dispose()
        if with_pg:
            try:
                from sqlalchemy import create_engine, text
                e = create_engine(PG_BASE)
                with e.begin() as c:
                    for st in stores.values():
                        if st.kind == "postgresql":
                            c.execute(text(f'DROP SCHEMA IF EXISTS "{schema_prefix}_{st.estimator}" CASCADE'))
                e.dispose()
            except Exception as ex:  # noqa: BLE001
                log(f"could not drop the PostgreSQL schemas: {ex}")

    import bentoml
    import sklearn
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python", "bench/serving.py", *(argv if argv is not None else sys.argv[1:])]),
        "host": f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
                f"BentoML {bentoml.__version__} · scikit-learn {sklearn.__version__}",
        "setup": f"wrk -t1 -c{args.connections}, {rounds} round(s) x {duration:g} s per variant "
                 f"(+ {warmup:g} s warm-up each), order alternating per round",
        "pinning": pin_note,
        "load": f"load average {load_before} before the runs, {loadavg()} after",
        "rounds": rounds, "duration_s": duration, "connections": args.connections,
    }
    info = {v.name: {"description": v.description, "store": stores[v.store].kind, "estimator": stores[v.store].estimator,
                     "instances": v.instances, "logs": v.logs} for v in variants}
    ref_base = "driftwatch-pg" if args.ref_store == "logreg-pg" else "driftwatch"
    result = summarize(runs, info, targets_for({v.name for v in variants}, ref_base), meta)
    result["notes"] = NOTES + [f"`{v.name}` runs the copy of the code in `{v.code}` (`--ref`)."
                               for v in variants if v.code is not None and not v.name.endswith("-nolog")]
    md, js = args.out / "serving.md", args.out / "serving.json"
    if args.quick and args.out == ROOT / "bench" / "results":
        md, js = args.out / "serving-quick.md", args.out / "serving-quick.json"
    write_results(result, md, js)
    log(f"wrote {md} and {js}")
    print(md.read_text())
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


if __name__ == "__main__":
    raise SystemExit(main())
