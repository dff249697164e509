"""Seeded demo data: the Agrawal loan-approval stream, with drift on demand.

Features follow river's ``Agrawal`` generator (same ranges, same dependency of
``commission`` on ``salary`` and of ``hvalue`` on ``zipcode``), drawn with
numpy so that large streams are fast; labels come from river's own
classification functions. Categorical codes become readable strings.

Drift kinds:

* covariate shift (``covariate_shift`` > 0): applicants get older and richer,
  labels still follow the same function;
* prior shift (``class_balance``): the share of positive labels is forced by
  rejection sampling on the label;
* concept drift (``function``): another classification function, same features.

>>> X, y = agrawal(5, seed=1)
>>> list(X.columns)
['salary', 'commission', 'age', 'elevel', 'car', 'zipcode', 'hvalue', 'hyears', 'loan']
>>> X.loc[0, 'elevel'], int(y.iloc[0]) in (0, 1)
('level_0', True)
>>> Xs, ys = agrawal(2000, seed=2, class_balance=0.8)
>>> round(float(ys.mean()), 1)
0.8
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from river.datasets.synth import Agrawal

FEATURES = ["salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan"]
CATEGORICAL = ["elevel", "car", "zipcode"]
TARGET = "approved"

_FUNCS = [getattr(Agrawal, f"_classification_function_{i}") for i in range(10)]


def _draw(n: int, rng: np.random.Generator, covariate_shift: float) -> pd.DataFrame:
    s = covariate_shift
    # salary uniform on [20k, 150k]; shifted mass towards high salaries
    u = rng.random(n)
    if s > 0:
        u = u ** (1.0 / (1.0 + 2.0 * s))
    salary = 20000 + 130000 * u
    commission = np.where(salary >= 75000, 0.0, 10000 + 75000 * rng.random(n))
    age = rng.integers(20, 81, n).astype(float)
    if s > 0:
        age = np.clip(age + np.round(15 * s * rng.random(n)), 20, 80)
    elevel = rng.integers(0, 5, n)
    car = rng.integers(1, 21, n)
    zipcode = rng.integers(0, 9, n)
    hvalue = (8 - zipcode) * 100000 * (0.5 + rng.random(n))
    hyears = rng.integers(1, 31, n).astype(float)
    loan = rng.random(n) * 500000
    return pd.DataFrame({
        "salary": salary, "commission": commission, "age": age,
        "elevel": elevel, "car": car, "zipcode": zipcode,
        "hvalue": hvalue, "hyears": hyears, "loan": loan,
    })


def _label(raw: pd.DataFrame, function: int) -> np.ndarray:
    f = _FUNCS[function]
    cols = [raw[c].to_numpy() for c in FEATURES]
    return np.fromiter((f(*row) for row in zip(*cols)), dtype=np.int64, count=len(raw))


def _readable(raw: pd.DataFrame) -> pd.DataFrame:
    out = raw.copy()
    out["elevel"] = "level_" + raw["elevel"].astype(str)
    out["car"] = "make_" + raw["car"].astype(str)
    out["zipcode"] = "zip_" + raw["zipcode"].astype(str)
    return out


def agrawal(
    n: int,
    seed: int,
    function: int = 0,
    covariate_shift: float = 0.0,
    class_balance: float | None = None,
    label_noise: float = 0.0,
) -> tuple[pd.DataFrame, pd.Series]:
    """Draw ``n`` labelled rows. Same arguments, same rows."""
    if not 0 <= function <= 9:
        raise ValueError("function must be in 0..9")
    rng = np.random.default_rng(seed)
    frames, labels, have = [], [], 0
    while have < n:
        raw = _draw(max(2 * (n - have), 256), rng, covariate_shift)
        y = _label(raw, function)
        if class_balance is not None:
            base = max(y.mean(), 1e-3)
            # accept positives with p_pos, negatives with p_neg so the kept share is class_balance
            p_pos = min(1.0, class_balance / base * (1 - base) / max(1 - class_balance, 1e-3))
            p_neg = min(1.0, (1 - class_balance) / max(1 - base, 1e-3) * base / max(class_balance, 1e-3))
            keep = rng.random(len(y)) < np.where(y == 1, p_pos, p_neg)
            raw, y = raw[keep], y[keep]
        frames.append(raw)
        labels.append(y)
        have += len(y)
    raw = pd.concat(frames, ignore_index=True).iloc[:n]
    y = np.concatenate(labels)[:n]
    if label_noise > 0:
        flip = rng.random(n) < label_noise
        y = np.where(flip, 1 - y, y)
    X = _readable(raw).reset_index(drop=True)
    return X, pd.Series(y, name=TARGET)


DEMO_LABEL_NOISE = 0.05


def demo_frame(n: int = 20000, seed: int = 42, label_noise: float = DEMO_LABEL_NOISE) -> pd.DataFrame:
    """The demo training table: features plus the ``approved`` target (5% of labels flipped)."""
    X, y = agrawal(n, seed=seed, label_noise=label_noise)
    return X.assign(**{TARGET: y})
