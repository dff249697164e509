"""Summarise a ``py-spy record -f raw`` profile: per thread, inclusive and self time by function.

    .venv/bin/python bench/pyspy_summary.py PROFILE.raw [--top 40]

Percentages are of the samples in which the thread was active (py-spy drops
idle samples unless ``--idle``); the first line per thread gives its share of
all active samples.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

_LINE = re.compile(r":\d+\)")


def summarize(text: str, top: int = 40) -> str:
    per_thread: dict[str, tuple[collections.Counter, collections.Counter, list[int]]] = {}
    for line in text.splitlines():
        stack, _, n = line.rstrip().rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")
        thread = re.sub(r"\(\d+\)", "", frames[0]).strip()
        if len(frames) > 1 and not frames[1].startswith(("Thread", "_bootstrap", "<module>", "_run_module")):
            thread = f"{thread} {frames[1].split(' (')[0]}"
        incl, selfc, total = per_thread.setdefault(thread, (collections.Counter(), collections.Counter(), [0]))
        count = int(n)
        total[0] += count
        seen = set()
        for f in frames[1:]:
            key = _LINE.sub(")", f)
            if key not in seen:
                incl[key] += count
                seen.add(key)
        if len(frames) > 1:
            selfc[_LINE.sub(")", frames[-1])] += count
    grand = sum(t[2][0] for t in per_thread.values()) or 1
    out = []
    for thread, (incl, selfc, total) in sorted(per_thread.items(), key=lambda kv: -kv[1][2][0]):
        n = total[0]
        out.append(f"=== {thread}: {n} samples ({100 * n / grand:.1f}% of active samples)")
        out.append("--- inclusive")
        out += [f"{100 * v / n:5.1f}% {k}" for k, v in incl.most_common(top)]
        out.append("--- self")
        out += [f"{100 * v / n:5.1f}% {k}" for k, v in selfc.most_common(top // 2)]
        out.append("")
    return "\n".join(out)


# (category, substrings of a frame): a sample goes to the category of its innermost frame that matches
CATEGORIES = [
    ("model (scikit-learn, pandas frame)", ("Served.predict", "Served.frame", "sklearn/", "pandas/", "numpy/",
                                            "narwhals/", "joblib/", "scipy/")),
    ("request log + store (writer thread, SQLAlchemy, sqlite3/psycopg)", ("service/requestlog.py", "driftwatch/store", "sqlite3",
                                                                         "sqlalchemy/", "psycopg/")),
    ("JSON encode/decode", ("json/", "orjson", "JSONResponse.render", "FastJSONResponse.render")),
    ("validation", ("service/validation.py",)),
    ("OpenTelemetry tracing middleware", ("opentelemetry", "asgi/__init__.py", "trace/__init__.py", "trace/sampling",
                                          "attributes/__init__.py", "context/__init__.py", "_decorator.py",
                                          "util/http")),
    ("metrics (BentoML middleware, prometheus_client)", ("prometheus_client/", "http/instruments.py",
                                                         "service/metrics.py")),
    ("FastAPI routing and middleware", ("fastapi/",)),
    ("Starlette routing, requests, responses", ("starlette/",)),
    ("BentoML server (context, timeout, mounts)", ("bentoml/", "_bentoml_impl/")),
    ("uvicorn / uvloop / asyncio (HTTP, event loop)", ("uvicorn/", "asyncio/", "Runner.run", "uvloop")),
    ("driftwatch handlers and batching", ("service/app.py", "service/batching.py", "service/model.py")),
]


def categories(text: str) -> list[tuple[str, float]]:
    """Share of all samples per category (innermost matching frame wins)."""
    counts: collections.Counter = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, n = line.rstrip().rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")[1:]
        total += int(n)
        cat = "other"
        for f in reversed(frames):
            hit = next((c for c, keys in CATEGORIES if any(k in f for k in keys)), None)
            if hit:
                cat = hit
                break
        counts[cat] += int(n)
    return [(c, counts[c] / total) for c, _ in CATEGORIES + [("other", ())] if counts[c]] if total else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--categories", action="store_true", help="only the share of samples per category")
    a = ap.parse_args()
    if a.categories:
        for c, share in categories(a.profile.read_text()):
            print(f"{100 * share:5.1f}%  {c}")
        return
    print(summarize(a.profile.read_text(), a.top))


if __name__ == "__main__":
    main()
