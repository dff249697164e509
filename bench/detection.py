"""Concept-drift detection quality: our CUSUM bank beside river's ADWIN(delta=0.002).

Both detectors read the same per-instance error stream (1 = the model was
wrong) in the same harness. Scenarios, 10 seeds each:

* SEA 0 -> 2: river's ``SEA`` generator, 10% label noise; a logistic
  regression trained on 5,000 rows of concept 0; 10,000 rows of concept 0,
  then an abrupt switch to concept 2 for 10,000 rows;
* Agrawal 0 -> 2: ``models.datagen.agrawal`` (the demo data, 5% label noise);
  the demo pipeline (HGB) trained on 5,000 rows of function 0; 10,000 rows of
  function 0, then function 2 for 10,000 rows.

Our detector is fitted on the model's errors on 5,000 held-out pre-drift
reference rows (as the monitor fits it on the package's reference) and is fed
in batches of 100 errors (as the runner feeds it); ADWIN gets one error at a
time. Measured: detection delay (post-drift instances seen when the first
alarm after the switch fires), missed detections (no alarm in the 10,000
post-drift instances), and false alarms per 100,000 no-drift instances
(the pre-drift parts plus a separate 100,000-instance no-drift stream per seed).

    .venv/bin/python bench/detection.py [--seeds 10]

Writes bench/results/detection.md and .json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from river.datasets.synth import SEA
from river.drift import ADWIN
from sklearn.linear_model import LogisticRegression

from driftwatch.schema import FeatureSchema
from models.datagen import agrawal
from models.train import build_pipeline
from monitors.sequential import CusumBank

RESULTS = Path(__file__).parent / "results"
BEFORE = AFTER = 10_000
NO_DRIFT = 100_000
REF = TRAIN = 5_000


def adwin_alarms(errors: np.ndarray) -> list[int]:
    det, out = ADWIN(delta=0.002), []
    for i, e in enumerate(errors.tolist()):
        det.update(e)
        if det.drift_detected:
            out.append(i)
    return out


def cusum_alarms(errors: np.ndarray, reference_errors: np.ndarray, chunk: int = 100) -> list[int]:
    det, out = CusumBank().fit(reference_errors), []
    for lo in range(0, len(errors), chunk):
        before = det.n_alarms_
        if det.update(errors[lo:lo + chunk]):
            out.extend(det.alarms_[-(det.n_alarms_ - before):])
    return out


# -- scenarios: each yields (reference errors, drift stream errors, no-drift stream errors) per seed --------

def sea_rows(variant: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rows = list(SEA(variant=variant, noise=0.1, seed=seed).take(n))
    X = np.array([[x[0], x[1], x[2]] for x, _ in rows])
    y = np.array([int(label) for _, label in rows])
    return X, y


def sea(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    model = LogisticRegression().fit(*sea_rows(0, TRAIN, 10_000 + seed))

    def errors(variant: int, n: int, s: int) -> np.ndarray:
        X, y = sea_rows(variant, n, s)
        return (model.predict(X) != y).astype(float)

    ref = errors(0, REF, 20_000 + seed)
    stream = np.r_[errors(0, BEFORE, seed), errors(2, AFTER, 30_000 + seed)]
    return ref, stream, errors(0, NO_DRIFT, 40_000 + seed)


_AGRAWAL_MODEL = {}


def agrawal_model():
    if "m" not in _AGRAWAL_MODEL:
        X, y = agrawal(TRAIN, seed=999, function=0, label_noise=0.05)
        _AGRAWAL_MODEL["m"] = build_pipeline(FeatureSchema.from_frame(X), "classification").fit(X, y)
    return _AGRAWAL_MODEL["m"]


def agrawal_stream(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    model = agrawal_model()

    def errors(function: int, n: int, s: int) -> np.ndarray:
        X, y = agrawal(n, seed=s, function=function, label_noise=0.05)
        return (np.asarray(model.predict(X)) != y.to_numpy()).astype(float)

    ref = errors(0, REF, 20_000 + seed)
    stream = np.r_[errors(0, BEFORE, seed), errors(2, AFTER, 30_000 + seed)]
    return ref, stream, errors(0, NO_DRIFT, 40_000 + seed)


SCENARIOS = {"SEA 0→2 (10% noise)": sea, "Agrawal 0→2 (5% noise)": agrawal_stream}


def summarise(delays: list[int | None], false_alarms: int, no_drift: int) -> dict:
    hit = [d for d in delays if d is not None]
    return {"median_delay": statistics.median(hit) if hit else None, "mean_delay": statistics.mean(hit) if hit else None,
            "delays": delays, "missed": sum(d is None for d in delays), "false_alarms": false_alarms,
            "no_drift_instances": no_drift, "false_alarms_per_100k": false_alarms / no_drift * 1e5}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    a = ap.parse_args()
    t_start = time.time()
    results: dict[str, dict] = {}
    rates: dict[str, dict] = {}
    for name, make in SCENARIOS.items():
        per = {"ADWIN(δ=0.002)": {"delays": [], "fa": 0}, "CUSUM bank (ours)": {"delays": [], "fa": 0}}
        pre, post = [], []
        n_no_drift = 0
        for seed in range(a.seeds):
            ref, stream, quiet = make(seed)
            pre.append(float(stream[:BEFORE].mean()))
            post.append(float(stream[BEFORE:].mean()))
            n_no_drift += BEFORE + len(quiet)
            for det, fn in (("ADWIN(δ=0.002)", adwin_alarms), ("CUSUM bank (ours)", lambda e, ref=ref: cusum_alarms(e, ref))):
                alarms = fn(stream)
                after = [i for i in alarms if i >= BEFORE]
                per[det]["delays"].append(after[0] - BEFORE + 1 if after else None)
                per[det]["fa"] += sum(1 for i in alarms if i < BEFORE) + len(fn(quiet))
        results[name] = {det: summarise(v["delays"], v["fa"], n_no_drift) for det, v in per.items()}
        rates[name] = {"error_before": statistics.mean(pre), "error_after": statistics.mean(post)}
        print(name, json.dumps(results[name], default=str))

    env = f"CPython {platform.python_version()} on {platform.machine()}, 2 cores shared with other work"
    lines = [
        "# Concept-drift detection: CUSUM bank (ours) beside ADWIN(δ=0.002)",
        "",
        (f"`.venv/bin/python bench/detection.py --seeds {a.seeds}` — same error streams for both detectors; "
         f"abrupt drift after {BEFORE:,} instances, {AFTER:,} after it; false alarms counted over the pre-drift "
         f"parts plus a {NO_DRIFT:,}-instance no-drift stream per seed; {a.seeds} seeds; {env}; "
         f"{time.time() - t_start:.0f} s in all."),
        "",
        ("| scenario | error before → after | detector | median delay | mean delay | missed | "
         "false alarms | per 100k no-drift |"),
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, dets in results.items():
        r = rates[name]
        for det, s in dets.items():
            med = "–" if s["median_delay"] is None else f"{s['median_delay']:.0f}"
            mean = "–" if s["mean_delay"] is None else f"{s['mean_delay']:.0f}"
            lines.append(f"| {name} | {r['error_before']:.3f} → {r['error_after']:.3f} | {det} | {med} | {mean} | "
                         f"{s['missed']}/{a.seeds} | {s['false_alarms']} / {s['no_drift_instances']:,} | "
                         f"{s['false_alarms_per_100k']:.2f} |")
    lines += ["", "Ratios (ours / ADWIN):", ""]
    for name, dets in results.items():
        ours, adwin = dets["CUSUM bank (ours)"], dets["ADWIN(δ=0.002)"]
        ratio = (ours["median_delay"] / adwin["median_delay"]
                 if ours["median_delay"] and adwin["median_delay"] else float("nan"))
        lines.append(f"- {name}: median delay {ratio:.2f}×; missed {ours['missed']} vs {adwin['missed']}; "
                     f"false alarms per 100k {ours['false_alarms_per_100k']:.2f} vs "
                     f"{adwin['false_alarms_per_100k']:.2f} (target ≤ 1).")
    lines += ["", "Per-seed delays:", ""]
    for name, dets in results.items():
        for det, s in dets.items():
            lines.append(f"- {name}, {det}: {s['delays']}")
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "detection.md").write_text(text)
    (RESULTS / "detection.json").write_text(json.dumps({"seeds": a.seeds, "results": results, "error_rates": rates,
                                                        "environment": env}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
