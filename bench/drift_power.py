"""Data-drift power at window 1000 for a 0.2 sd shift in half the features, beside the false-alarm rate.

Two kinds of reference of 5,000 rows (several independent draws of each,
each calibrated on its own: budget 0.001 false dataset-drift flags per
window, seed 0):

* ``gaussian``: 10 independent N(0, 1) features; the shift adds 0.2 to 5 of them;
* ``agrawal``: the demo features (6 numeric, 3 categorical); the shift adds
  0.2 reference standard deviations to 5 of them (salary, age, hvalue, hyears, loan).

Windows are fresh draws from the same generators (never reference rows),
spread evenly over the references, so the rates are averages over references
as well as windows. Power = share of shifted windows with the dataset-drift
flag; the false-alarm rate is measured on unshifted windows of 1,000 and of
100 rows, with a one-sided 95% Clopper-Pearson upper bound. For contrast, Evidently's default
decision on the same scores (a column drifts at score >= 0.1; the dataset
when at least half the columns drift, or when any does) is counted too:
our scores equal Evidently's, only the thresholds differ.

    .venv/bin/python bench/drift_power.py [--references 5] [--windows 500] [--null-windows 3000]

Writes bench/results/drift_power.md and .json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import beta

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.datagen import CATEGORICAL, FEATURES, agrawal
from monitors.drift import DriftMonitor

RESULTS = Path(__file__).parent / "results"
SHIFT = 0.2
AGRAWAL_SHIFTED = ["salary", "age", "hvalue", "hyears", "loan"]


def upper95(k: int, n: int) -> float:
    return 1.0 if k >= n else float(beta.ppf(0.95, k + 1, n - k))


def gaussian(n: int, seed: int) -> pd.DataFrame:
    x = np.random.default_rng(seed).normal(size=(n, 10))
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(10)])


def agrawal_features(n: int, seed: int) -> pd.DataFrame:
    return agrawal(n, seed=seed)[0]


DATASETS = {
    "gaussian (10 numeric)": (gaussian, {f"x{i}": "numeric" for i in range(10)}, [f"x{i}" for i in range(5)]),
    "agrawal demo (6 numeric + 3 categorical)": (
        agrawal_features, {c: "categorical" if c in CATEGORICAL else "numeric" for c in FEATURES}, AGRAWAL_SHIFTED),
}


def flags(monitor: DriftMonitor, windows: list[pd.DataFrame], out: dict[str, int] | None = None) -> dict[str, int]:
    out = out if out is not None else {"ours": 0, "evidently_share": 0, "evidently_any": 0}
    for w in windows:
        r = monitor.evaluate(w)
        out["ours"] += r.dataset_drift
        default = [c.score >= 0.1 for c in r.columns]
        out["evidently_share"] += sum(default) >= 0.5 * len(default)
        out["evidently_any"] += any(default)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--references", type=int, default=5, help="independent references per dataset")
    ap.add_argument("--windows", type=int, default=500, help="shifted windows of 1000 rows per dataset")
    ap.add_argument("--null-windows", type=int, default=3000, help="unshifted windows per size and dataset")
    a = ap.parse_args()
    t_start = time.time()
    rows, raw = [], {}
    for name, (draw, kinds, shifted) in DATASETS.items():
        for size in (1000, 100):
            entry = {"dataset": name, "window": size, "references": a.references, "calibration_seconds": [],
                     "null_windows": a.null_windows, "null": None}
            if size == 1000:
                entry["shifted_windows"], entry["shifted"] = a.windows, None
            for r in range(a.references):
                reference = draw(5000, 100 + r)
                sd = reference[shifted].std(ddof=0)
                t = time.perf_counter()
                monitor = DriftMonitor(window_size=size, budget=1e-3, seed=0).fit(reference, kinds)
                entry["calibration_seconds"].append(time.perf_counter() - t)
                k = a.null_windows // a.references
                pool = draw(size * k, 10_000 * size + r)
                entry["null"] = flags(monitor, [pool.iloc[i:i + size] for i in range(0, len(pool), size)],
                                      entry["null"])
                if size == 1000:
                    k = a.windows // a.references
                    pool = draw(size * k, 20_000 + r)
                    pool[shifted] = pool[shifted] + SHIFT * sd
                    entry["shifted"] = flags(monitor, [pool.iloc[i:i + size] for i in range(0, len(pool), size)],
                                             entry["shifted"])
            entry["null_windows"] = a.null_windows // a.references * a.references
            if size == 1000:
                entry["shifted_windows"] = a.windows // a.references * a.references
            raw[f"{name} / {size}"] = entry
            rows.append(entry)
            print(json.dumps(entry))

    env = f"CPython {platform.python_version()} on {platform.machine()}, 2 cores shared with other work"
    lines = [
        "# Data-drift power and false alarms (calibrated thresholds, budget 0.001 per window)",
        "",
        (f"`.venv/bin/python bench/drift_power.py --references {a.references} --windows {a.windows} "
         f"--null-windows {a.null_windows}` — {a.references} references of 5,000 rows per dataset; shift = +{SHIFT} sd in half the features; fresh windows; {env}; "
         f"{time.time() - t_start:.0f} s in all."),
        "",
        ("| dataset | window | power at +0.2 sd (ours) | false-alarm rate (ours) | 95% upper bound | "
         "Evidently defaults: power / false alarms (share ≥ 0.5) | (any column) | calibration s (median) |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in rows:
        n0 = e["null_windows"]
        k0 = e["null"]["ours"]
        if "shifted" in e:
            n1 = e["shifted_windows"]
            power = f"{e['shifted']['ours'] / n1:.3f} ({e['shifted']['ours']}/{n1})"
            ev_share = f"{e['shifted']['evidently_share'] / n1:.3f} / {e['null']['evidently_share'] / n0:.4f}"
            ev_any = f"{e['shifted']['evidently_any'] / n1:.3f} / {e['null']['evidently_any'] / n0:.4f}"
        else:
            power = "–"
            ev_share = f"– / {e['null']['evidently_share'] / n0:.4f}"
            ev_any = f"– / {e['null']['evidently_any'] / n0:.4f}"
        lines.append(f"| {e['dataset']} | {e['window']} | {power} | {k0 / n0:.4f} ({k0}/{n0}) | "
                     f"{upper95(k0, n0):.4f} | {ev_share} | {ev_any} | {np.median(e['calibration_seconds']):.2f} |")
    lines += ["", "Targets: power ≥ 0.9 at window 1000; false-alarm rate ≤ 0.001 per window (the budget)."]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "drift_power.md").write_text(text)
    (RESULTS / "drift_power.json").write_text(json.dumps({"results": raw, "environment": env}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
