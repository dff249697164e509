"""Two-sample drift statistics with the reference side computed once.

The formulas are Evidently's own (``monitors.evidently_adapter`` checks that the
scores agree with Evidently's stattests), but the reference is prepared at fit
time, so scoring a window costs one sort of the window, not of the reference:

* numeric columns: normed Wasserstein distance (Evidently ``"wasserstein"``):
  W1(reference, current) / max(std(reference), 0.001);
* categorical columns: Jensen-Shannon distance of category frequencies,
  natural logarithm (Evidently ``"jensenshannon"``).

Missing and infinite values are dropped on both sides, as Evidently does.

Each statistic also scores many resampled windows at once
(``resample_scores``): windows drawn from the reference rows, compared with the
rest of the reference. ``monitors.calibration`` uses it to learn the null
distribution.

>>> import numpy as np
>>> ref = NumericReference.fit(np.arange(100.0))
>>> round(ref.score(np.arange(100.0) + 10), 4)      # shift of 10 / std 28.87
0.3464
>>> cat = CategoricalReference.fit(np.array(["a", "b", "a", "b"], dtype=object))
>>> round(cat.score(np.array(["a", "a", "a", "b"], dtype=object)), 4)
0.1839
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

WASSERSTEIN = "wasserstein"
JENSENSHANNON = "jensenshannon"


def finite_values(values) -> np.ndarray:
    """Float array of the finite values (NaN, None and +-inf dropped)."""
    arr = np.asarray(values, dtype=float)
    return arr[np.isfinite(arr)]


def present_values(values) -> np.ndarray:
    """Object array of the non-missing categorical values, as strings."""
    s = pd.Series(values, dtype=object)
    s = s[s.notna()]
    return s.astype(str).to_numpy(dtype=object)


@dataclass(frozen=True)
class NumericReference:
    """Sorted finite reference values and Evidently's norm (reference std, at least 0.001)."""

    sorted_values: np.ndarray
    norm: float
    method: str = WASSERSTEIN

    @classmethod
    def fit(cls, values) -> NumericReference:
        x = np.sort(finite_values(values))
        if x.size == 0:
            raise ValueError("reference column has no finite values")
        return cls(sorted_values=x, norm=max(float(np.std(x)), 0.001))

    def score(self, current) -> float:
        """Normed Wasserstein distance of ``current`` to the reference; NaN if nothing to compare."""
        cur = np.sort(finite_values(current))
        if cur.size == 0:
            return float("nan")
        ref = self.sorted_values
        both = np.concatenate((ref, cur))
        both.sort(kind="mergesort")
        deltas = np.diff(both)
        at = both[:-1]
        ref_cdf = ref.searchsorted(at, "right") / ref.size
        cur_cdf = cur.searchsorted(at, "right") / cur.size
        return float(np.dot(np.abs(ref_cdf - cur_cdf), deltas)) / self.norm

    def resample_scores(self, column, windows: np.ndarray) -> np.ndarray:
        """Scores of windows of reference rows against the rest of the reference.

        ``column`` is the reference column in row order (the one given to
        ``fit``), ``windows`` a (B, m) array of row indices. The rest's CDF is
        (N F_ref - m F_win) / (N - m), so W(window, rest) = N / (N - m) * W(window, ref).

        W(window, ref) = sum_i |(i+1)/N - C_i/m| g_i over the sorted reference
        (g_i its gaps, C_i the window rows among the first i+1). C_i is constant
        between consecutive window ranks and the sign of the difference flips
        at most once there, so with prefix sums of g_i and (i+1) g_i each
        window costs O(m), not O(N).
        """
        x = np.asarray(column, dtype=float)
        finite = np.isfinite(x)
        order = np.argsort(np.where(finite, x, np.inf), kind="stable")
        n = int(finite.sum())
        rank = np.full(x.size, n, dtype=np.int64)  # n marks a missing value
        rank[order[:n]] = np.arange(n)
        gaps = np.diff(x[order[:n]])
        g_cum = np.concatenate(([0.0], np.cumsum(gaps)))
        h_cum = np.concatenate(([0.0], np.cumsum(np.arange(1, n) * gaps)))
        out = np.empty(len(windows))
        for lo in range(0, len(windows), 256):
            r = np.sort(rank[windows[lo:lo + 256]], axis=1)
            b, m = r.shape
            mb = (r < n).sum(axis=1, keepdims=True).astype(float)
            last = np.full((b, 1), n - 1)
            starts = np.minimum(np.concatenate((np.zeros((b, 1), dtype=np.int64), r), axis=1), n - 1)
            ends = np.minimum(np.concatenate((r, last), axis=1), n - 1)
            k = np.arange(m + 1)[None, :]
            with np.errstate(invalid="ignore", divide="ignore"):
                level = k / mb
                cross = np.clip(np.ceil(k * n / mb) - 1, starts, ends).astype(np.int64)
                seg = level * (2 * g_cum[cross] - g_cum[starts] - g_cum[ends]) \
                    + (h_cum[ends] + h_cum[starts] - 2 * h_cum[cross]) / n
                dist = np.where(k <= mb, seg, 0.0).sum(axis=1)
                m_eff = mb[:, 0]
                out[lo:lo + b] = np.where((m_eff > 0) & (m_eff < n), dist * n / (n - m_eff), np.nan)
        return out / self.norm


def _js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (natural log) of count vectors along the last axis, as scipy computes it."""
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum(axis=-1, keepdims=True)
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=-1)
        right = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=-1)
    return np.sqrt(np.maximum(left + right, 0.0) / 2.0)


@dataclass(frozen=True)
class CategoricalReference:
    """Reference category counts (missing values dropped)."""

    categories: tuple[str, ...]
    counts: np.ndarray
    method: str = JENSENSHANNON

    @classmethod
    def fit(cls, values) -> CategoricalReference:
        v = present_values(values)
        if v.size == 0:
            raise ValueError("reference column has no values")
        cats, counts = np.unique(v.astype(str), return_counts=True)
        return cls(categories=tuple(cats.tolist()), counts=counts.astype(float))

    def score(self, current) -> float:
        """Jensen-Shannon distance of category frequencies; unseen categories count as new bins."""
        cur = present_values(current)
        if cur.size == 0:
            return float("nan")
        cats, counts = np.unique(cur.astype(str), return_counts=True)
        index = {c: i for i, c in enumerate(self.categories)}
        cur_counts = np.zeros(len(self.categories))
        extra = []
        for c, k in zip(cats.tolist(), counts.tolist()):
            i = index.get(c)
            if i is None:
                extra.append(float(k))
            else:
                cur_counts[i] = k
        ref = np.concatenate((self.counts, np.zeros(len(extra))))
        cur_all = np.concatenate((cur_counts, np.asarray(extra, dtype=float)))
        return float(_js_distance(ref, cur_all))

    def resample_scores(self, column, windows: np.ndarray) -> np.ndarray:
        """Scores of windows of reference rows (``windows``: (B, m) row indices) against the rest."""
        v = pd.Series(column, dtype=object)
        index = {c: i for i, c in enumerate(self.categories)}
        code = np.array([-1 if pd.isna(x) else index[str(x)] for x in v], dtype=np.int64)
        k = len(self.categories)
        out = np.empty(len(windows))
        for lo in range(0, len(windows), 1024):
            c = code[windows[lo:lo + 1024]]
            rows = np.repeat(np.arange(len(c)), c.shape[1])
            keep = c.ravel() >= 0
            flat = rows[keep] * k + c.ravel()[keep]
            win = np.bincount(flat, minlength=len(c) * k).reshape(len(c), k).astype(float)
            rest = self.counts[None, :] - win
            ok = (win.sum(axis=1) > 0) & (rest.sum(axis=1) > 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[lo:lo + len(c)] = np.where(ok, _js_distance(win, rest), np.nan)
        return out


ColumnReference = NumericReference | CategoricalReference


def fit_reference(values, kind: str) -> ColumnReference:
    """The statistic for a column kind: ``"numeric"`` or ``"categorical"``."""
    if kind == "numeric":
        return NumericReference.fit(values)
    if kind == "categorical":
        return CategoricalReference.fit(values)
    raise ValueError(f"unknown column kind {kind!r}")
