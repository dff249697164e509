"""Data drift and prediction drift of a window against the reference, with calibrated thresholds.

``DriftMonitor`` tests each column with the statistic suited to its kind
(``monitors.stattests``) against a threshold calibrated for the window size
(``monitors.calibration``). The dataset-drift flag is raised when any column
drifts; the false-alarm ``budget`` of that flag is split evenly across the
columns (Bonferroni), so it holds whatever the dependence between them.
Prediction drift is the same machinery on one column (predicted classes, or
regression scores) with its own budget.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(size=4000), "c": rng.choice(list("abc"), 4000)})
>>> mon = DriftMonitor(window_size=500, seed=0).fit(ref, {"x": "numeric", "c": "categorical"})
>>> same = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(list("abc"), 500)})
>>> mon.evaluate(same).dataset_drift
False
>>> shifted = same.assign(x=same["x"] + 0.5)
>>> r = mon.evaluate(shifted)
>>> r.dataset_drift, r.drifted_features
(True, ['x'])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from monitors.calibration import Calibration, calibrate, fingerprint
from monitors.performance import label_text
from monitors.stattests import ColumnReference, fit_reference


@dataclass
class ColumnDrift:
    """One column's test: Evidently method name, score, calibrated threshold, null p-value."""

    feature: str
    kind: str
    method: str
    score: float
    threshold: float
    p_value: float
    drifted: bool

    @property
    def ratio(self) -> float:
        """Score over threshold (drifted when > 1); 0 when there was nothing to score."""
        if not np.isfinite(self.score) or self.threshold <= 0:
            return 0.0
        return self.score / self.threshold


@dataclass
class DriftResult:
    columns: list[ColumnDrift]
    rows: int

    @property
    def n_drifted(self) -> int:
        return sum(c.drifted for c in self.columns)

    @property
    def drift_share(self) -> float:
        return self.n_drifted / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        return self.n_drifted > 0

    @property
    def drifted_features(self) -> list[str]:
        return [c.feature for c in self.columns if c.drifted]

    def column(self, name: str) -> ColumnDrift:
        return next(c for c in self.columns if c.feature == name)

    def to_dict(self) -> dict:
        return {"rows": self.rows, "drift_share": self.drift_share, "n_drifted": self.n_drifted,
                "dataset_drift": self.dataset_drift, "features": [asdict(c) for c in self.columns]}


class DriftMonitor:
    """Per-column drift tests with thresholds calibrated to ``budget`` false dataset flags per window."""

    def __init__(self, window_size: int = 1000, budget: float = 1e-3, n_resamples: int = 2000,
                 seed: int = 0, tail_fraction: float = 0.1):
        self.window_size = window_size
        self.budget = budget
        self.n_resamples = n_resamples
        self.seed = seed
        self.tail_fraction = tail_fraction

    def fit(self, reference: pd.DataFrame, kinds: dict[str, str],
            calibration: Calibration | dict | None = None) -> DriftMonitor:
        """Prepare each column's reference; reuse ``calibration`` if it was made for this reference, else calibrate."""
        if not 0 < self.budget < 1:
            raise ValueError("budget must be in (0, 1)")
        self.kinds_ = dict(kinds)
        self.references_: dict[str, ColumnReference] = {
            name: fit_reference(reference[name], kind) for name, kind in self.kinds_.items()}
        self.present_share_ = {name: float(reference[name].notna().mean()) for name in self.kinds_}
        if isinstance(calibration, dict):
            calibration = Calibration.from_dict(calibration)
        fp = fingerprint(reference[list(self.kinds_)]) if calibration is not None else None
        self.calibration_reused_ = bool(
            calibration is not None and calibration.matches(fp, self.window_size, self.seed)
            and set(calibration.columns) >= set(self.kinds_))
        if not self.calibration_reused_:
            calibration = calibrate(reference, self.kinds_, self.window_size, n_resamples=self.n_resamples,
                                    seed=self.seed, tail_fraction=self.tail_fraction,
                                    references=self.references_)
        self.calibration_: Calibration = calibration
        self.alpha_ = self.budget / len(self.kinds_)
        self.thresholds_ = {name: calibration.threshold(name, self.alpha_) for name in self.kinds_}
        return self

    def _effective_rows(self, name: str, values: np.ndarray, rows: int) -> int:
        present = int(pd.notna(values).sum()) if values.dtype == object else int(np.isfinite(values).sum())
        share = self.present_share_[name]
        return round(present / share) if share > 0 else rows

    def evaluate(self, window: pd.DataFrame) -> DriftResult:
        """Score every column of ``window`` (same columns as the reference)."""
        rows = len(window)
        out = []
        for name, kind in self.kinds_.items():
            ref = self.references_[name]
            values = window[name].to_numpy(dtype=float if kind == "numeric" else object)
            score = ref.score(values)
            eff = self._effective_rows(name, values, rows)
            threshold = self.thresholds_[name] if eff == self.window_size else \
                self.calibration_.threshold(name, self.alpha_, rows=max(eff, 1))
            if np.isfinite(score):
                p_value = self.calibration_.p_value(name, score, rows=max(eff, 1))
                drifted = bool(score > threshold)
            else:
                p_value, drifted = float("nan"), False
            out.append(ColumnDrift(feature=name, kind=kind, method=ref.method, score=float(score),
                                   threshold=float(threshold), p_value=float(p_value), drifted=drifted))
        return DriftResult(columns=out, rows=rows)


def prediction_frame(predictions, task: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Predictions as a one-column frame (``prediction``) and its kind: classes categorical, scores numeric."""
    s = pd.Series(np.asarray(predictions), dtype=float if task == "regression" else object)
    if task != "regression":  # as text, so that 1, 1.0 and "1" are one class
        s = s.map(lambda v: v if pd.isna(v) else label_text(v))
    kind = "numeric" if task == "regression" else "categorical"
    return pd.DataFrame({"prediction": s.to_numpy()}), {"prediction": kind}
