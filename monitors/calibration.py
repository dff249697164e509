"""Drift thresholds calibrated on the reference for one window size and false-alarm budget.

Evidently's fixed thresholds (0.1 for normed Wasserstein and Jensen-Shannon)
ignore the window size, so identical distributions drift on small windows.
Here each statistic's null distribution is estimated by resampling: windows
of the target size are drawn from the reference rows (the same rows for every
column, so dependence between columns is kept) and scored against the rest of
the reference. Since the rest is smaller than the full reference, this null is
slightly wider than the one a production window meets: the thresholds err on
the safe side.

A budget of 0.001 false dataset-drift flags per window, spread over p columns
(Bonferroni: the flag is raised when any column drifts), needs each column's
quantile at 1 - 0.001 / p, far beyond what a few thousand resamples resolve.
So the tail is modelled: above the empirical ``1 - tail_fraction`` quantile
u0 of U = S^k, P(U > u) = tail_fraction * exp(-(u - u0) / beta), with beta the
mean excess plus one standard error. The power k is 2 for Jensen-Shannon
(whose square is asymptotically a weighted chi-square, so the model is
conservative) and 1.5 for normed Wasserstein: checked against 100,000
resamples on the Agrawal reference (windows 100 and 1000), k = 2 under-states
Wasserstein's tail at the 1e-4 level by up to 2x, k = 1.5 meets it on average
(0.2x to 0.8x of the nominal rate) and k = 1 is 10x too conservative.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(size=3000), "c": rng.choice(list("abc"), 3000)})
>>> cal = calibrate(ref, {"x": "numeric", "c": "categorical"}, window_size=300, seed=1)
>>> sorted(cal.columns)
['c', 'x']
>>> t = cal.threshold("x", alpha=0.001 / 2)
>>> 0.1 < t < 0.5            # Evidently's fixed 0.1 would false-alarm here
True
>>> Calibration.from_dict(cal.to_dict()).threshold("x", alpha=0.001 / 2) == t
True
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from monitors.stattests import ColumnReference, fit_reference

FORMAT_VERSION = 1
_BODY_LEVELS = (0.5, 0.75, 0.9, 0.95, 0.99)
TAIL_POWER = {"wasserstein": 1.5, "jensenshannon": 2.0}


@dataclass
class NullTail:
    """Null distribution of one drift statistic: a few empirical quantiles plus an exponential tail."""

    method: str
    levels: list[float]
    quantiles: list[float]
    u0: float
    beta: float
    power: float
    tail_fraction: float
    n_resamples: int

    @classmethod
    def fit(cls, method: str, scores: np.ndarray, tail_fraction: float = 0.1,
            beta_z: float = 1.0, power: float | None = None) -> NullTail:
        """Fit from resampled null scores; ``beta_z`` standard errors are added to the mean excess."""
        s = np.sort(scores[np.isfinite(scores)])
        if s.size < 50:
            raise ValueError(f"too few finite null resamples ({s.size}) to calibrate")
        power = TAIL_POWER.get(method, 2.0) if power is None else power
        u = s ** power
        u0 = float(np.quantile(u, 1.0 - tail_fraction))
        excess = u[u > u0] - u0
        beta = float(excess.mean()) if excess.size else 0.0
        if excess.size > 1:
            beta += beta_z * float(excess.std(ddof=1)) / math.sqrt(excess.size)
        return cls(
            method=method,
            levels=list(_BODY_LEVELS),
            quantiles=[float(np.quantile(s, q)) for q in _BODY_LEVELS],
            u0=u0, beta=beta, power=power, tail_fraction=tail_fraction, n_resamples=int(s.size),
        )

    def threshold(self, alpha: float) -> float:
        """Score exceeded with probability at most ``alpha`` under no drift."""
        if alpha >= self.tail_fraction:
            return float(np.interp(1.0 - alpha, self.levels, self.quantiles))
        return (self.u0 + self.beta * math.log(self.tail_fraction / alpha)) ** (1.0 / self.power)

    def p_value(self, score: float) -> float:
        """Probability of a score at least this large under no drift (interpolated in the body)."""
        if not math.isfinite(score):
            return float("nan")
        u = max(score, 0.0) ** self.power
        if u > self.u0:
            if self.beta <= 0:
                return 0.0
            return self.tail_fraction * math.exp(-(u - self.u0) / self.beta)
        return float(1.0 - np.interp(score, self.quantiles, self.levels, left=0.0, right=1.0 - self.tail_fraction))


@dataclass
class Calibration:
    """Null tails of each column for one reference, window size and seed; JSON round-trips."""

    window_size: int
    reference_rows: int
    seed: int
    n_resamples: int
    fingerprint: str
    columns: dict[str, NullTail] = field(default_factory=dict)
    version: int = FORMAT_VERSION

    def threshold(self, column: str, alpha: float, rows: int | None = None) -> float:
        """Threshold at level ``alpha`` for a window of ``rows`` rows (default: the calibrated size).

        For another window size the threshold is rescaled by the null's
        sqrt(1/m + 1/N) law, which all statistics here follow asymptotically.
        """
        t = self.columns[column].threshold(alpha)
        if rows is None or rows == self.window_size or rows <= 0:
            return t
        n = self.reference_rows
        return t * math.sqrt((1.0 / rows + 1.0 / n) / (1.0 / self.window_size + 1.0 / n))

    def p_value(self, column: str, score: float, rows: int | None = None) -> float:
        """Null probability of ``score`` (rescaled to the calibrated window size)."""
        if rows is not None and rows > 0 and rows != self.window_size:
            n = self.reference_rows
            score = score * math.sqrt((1.0 / self.window_size + 1.0 / n) / (1.0 / rows + 1.0 / n))
        return self.columns[column].p_value(score)

    def to_dict(self) -> dict:
        return {
            "version": self.version, "window_size": self.window_size,
            "reference_rows": self.reference_rows, "seed": self.seed,
            "n_resamples": self.n_resamples, "fingerprint": self.fingerprint,
            "columns": {k: asdict(v) for k, v in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported calibration format {data.get('version')!r}")
        cols = {k: NullTail(**v) for k, v in data["columns"].items()}
        return cls(window_size=int(data["window_size"]), reference_rows=int(data["reference_rows"]),
                   seed=int(data["seed"]), n_resamples=int(data["n_resamples"]),
                   fingerprint=str(data["fingerprint"]), columns=cols, version=FORMAT_VERSION)

    def matches(self, fingerprint: str, window_size: int, seed: int) -> bool:
        return (self.fingerprint, self.window_size, self.seed) == (fingerprint, window_size, seed)


def fingerprint(frame: pd.DataFrame) -> str:
    """Short content hash of the reference columns (names, order and values)."""
    h = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def resample_windows(n_rows: int, window_size: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, m) row indices of windows drawn without replacement, m <= n_rows // 2."""
    m = min(window_size, n_rows // 2)
    if m < 1:
        raise ValueError(f"reference of {n_rows} rows is too small to calibrate")
    rng = np.random.default_rng(seed)
    out = np.empty((n_resamples, m), dtype=np.int64)
    for lo in range(0, n_resamples, 256):
        keys = rng.random((min(256, n_resamples - lo), n_rows))
        out[lo:lo + len(keys)] = np.argpartition(keys, m - 1, axis=1)[:, :m]
    return out


def calibrate(reference: pd.DataFrame, kinds: dict[str, str], window_size: int, *,
              n_resamples: int = 2000, seed: int = 0, tail_fraction: float = 0.1,
              references: dict[str, ColumnReference] | None = None) -> Calibration:
    """Null tails for every column of ``reference`` named in ``kinds`` (``numeric`` / ``categorical``).

    If the reference has fewer than twice ``window_size`` rows, windows of
    half the reference are drawn and the scores rescaled to ``window_size``.
    """
    n = len(reference)
    windows = resample_windows(n, window_size, n_resamples, seed)
    m = windows.shape[1]
    # production compares m-row windows with all N rows; resamples compare m' rows with N - m'
    scale = 1.0
    if m < window_size:
        scale = math.sqrt((1.0 / window_size + 1.0 / n) / (1.0 / m + 1.0 / (n - m)))
    columns = {}
    for name, kind in kinds.items():
        ref = (references or {}).get(name) or fit_reference(reference[name], kind)
        scores = ref.resample_scores(reference[name].to_numpy(), windows) * scale
        columns[name] = NullTail.fit(ref.method, scores, tail_fraction=tail_fraction)
    return Calibration(window_size=window_size, reference_rows=n, seed=seed,
                       n_resamples=n_resamples, fingerprint=fingerprint(reference[list(kinds)]),
                       columns=columns)
