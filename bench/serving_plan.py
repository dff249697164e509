"""What the serving benchmark runs (variants) and judges (issue 6's targets); ``bench/serving.py`` runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Variant:
    name: str
    kind: str                  # driftwatch | bentoml | starlette
    store: str                 # Store.key
    description: str
    instances: int = 1
    logs: bool = True
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    code: Path | None = None   # run this copy of the code (PYTHONPATH) instead of the working tree
    no_sync: bool = False      # commits not synced to disk (SQLite synchronous=NORMAL, PostgreSQL synchronous_commit=off)


def variants_for(with_pg: bool) -> list[Variant]:
    """In run order: the members of each A/B pair are next to each other."""
    vs = [
        Variant("driftwatch", "driftwatch", "logreg-sqlite", "driftwatch /predict"),
        Variant("bentoml-plain", "bentoml", "logreg-sqlite", "default BentoML service", logs=False),
        Variant("starlette-bare", "starlette", "logreg-sqlite", "bare Starlette/uvicorn", logs=False),
        Variant("driftwatch-nolog", "driftwatch", "logreg-sqlite", "driftwatch --no-log", logs=False,
                args=["--no-log"]),
        Variant("driftwatch-100", "driftwatch", "logreg-sqlite", "driftwatch, 100 instances/request", instances=100),
        Variant("driftwatch-nosync", "driftwatch", "logreg-sqlite", "driftwatch, SQLite synchronous=NORMAL",
                no_sync=True),
    ]
    if with_pg:
        vs += [
            Variant("driftwatch-pg", "driftwatch", "logreg-pg", "driftwatch /predict"),
            Variant("driftwatch-pg-100", "driftwatch", "logreg-pg", "driftwatch, 100 instances/request",
                    instances=100),
            Variant("driftwatch-pg-nosync", "driftwatch", "logreg-pg", "driftwatch, synchronous_commit=off",
                    no_sync=True),
        ]
    vs += [
        Variant("driftwatch-rf", "driftwatch", "rf-sqlite", "random forest, adaptive batching"),
        Variant("driftwatch-rf-unbatched", "driftwatch", "rf-sqlite", "random forest, BATCH_MAX_SIZE=1",
                env={"DRIFTWATCH_BATCH_MAX_SIZE": "1"}),
    ]
    if with_pg:
        vs += [
            Variant("driftwatch-pg-rf", "driftwatch", "rf-pg", "random forest, adaptive batching"),
            Variant("driftwatch-pg-rf-unbatched", "driftwatch", "rf-pg", "random forest, BATCH_MAX_SIZE=1",
                    env={"DRIFTWATCH_BATCH_MAX_SIZE": "1"}),
        ]
    return vs


def targets_for(names: set[str], ref_base: str = "driftwatch") -> list[dict[str, Any]]:
    """Issue 6's targets, for the variants that are present."""
    out: list[dict[str, Any]] = []

    def ratio(name, a, b, metric, op, threshold):
        if a in names and b in names:
            out.append({"name": name, "kind": "ratio", "a": a, "b": b, "metric": metric, "op": op,
                        "threshold": threshold})

    for dw, label in (("driftwatch", "SQLite"), ("driftwatch-pg", "PostgreSQL")):
        ratio(f"throughput vs default BentoML ({label})", dw, "bentoml-plain", "rps", ">=", 1.0)
        ratio(f"p99 vs default BentoML ({label})", dw, "bentoml-plain", "p99_ms", "<=", 1.0)
        ratio(f"throughput vs bare Starlette ({label})", dw, "starlette-bare", "rps", ">=", 0.5)
        ratio(f"throughput logging on/off ({label})", dw, "driftwatch-nolog", "rps", ">=", 0.95)
        ratio(f"p99 logging on/off ({label})", dw, "driftwatch-nolog", "p99_ms", "<=", 1.10)
    # cost of a request = 1 / throughput at the same concurrency: cost(100)/cost(1) = rps(1)/rps(100)
    # what the per-commit sync costs (informational: the default keeps it)
    ratio("throughput logging on/off, commits not synced (SQLite synchronous=NORMAL)", "driftwatch-nosync",
          "driftwatch-nolog", "rps", None, None)
    ratio("throughput logging on/off, commits not synced (PostgreSQL synchronous_commit=off)", "driftwatch-pg-nosync",
          "driftwatch-nolog", "rps", None, None)
    ratio("cost of 100 instances / 1 instance (SQLite)", "driftwatch", "driftwatch-100", "rps", "<=", 5.0)
    ratio("cost of 100 instances / 1 instance (PostgreSQL)", "driftwatch-pg", "driftwatch-pg-100", "rps", "<=", 5.0)
    ratio("random forest: batched / unbatched throughput (SQLite)", "driftwatch-rf", "driftwatch-rf-unbatched",
          "rps", ">=", 3.0)
    ratio("random forest: batched / unbatched throughput (PostgreSQL)", "driftwatch-pg-rf",
          "driftwatch-pg-rf-unbatched", "rps", ">=", 3.0)
    for ref in sorted(n for n in names if n.startswith("ref-") and not n.endswith("-nolog")):
        ratio(f"throughput, {ref} / {ref_base}", ref, ref_base, "rps", None, None)
        ratio(f"CPU per request, {ref} / {ref_base}", ref, ref_base, "cpu_ms", None, None)
        ratio(f"p99, {ref} / {ref_base}", ref, ref_base, "p99_ms", None, None)
        ratio(f"throughput logging on/off, {ref}", ref, f"{ref}-nolog", "rps", None, None)
        if f"{ref}-nolog" not in names:  # a copy with another request log (bench/log_floor.py): against no log
            ratio(f"throughput, {ref} / driftwatch-nolog", ref, "driftwatch-nolog", "rps", None, None)
            ratio(f"p99, {ref} / driftwatch-nolog", ref, "driftwatch-nolog", "p99_ms", None, None)
    logging = sorted(n for n in names if n.startswith(("driftwatch", "ref-")) and "nolog" not in n
                     and not n.startswith("ref-floor-"))  # bench/log_floor.py's copies store nothing
    if logging:
        out.append({"name": "rows logged == instances in 200 responses, one distinct request id each",
                    "kind": "check", "check": "rows_match", "variants": logging})
    rf = sorted(n for n in names if "-rf" in n)
    if rf:
        out.append({"name": "random forest: zero non-2xx and socket errors", "kind": "check", "check": "no_errors",
                    "variants": rf})
    return out
