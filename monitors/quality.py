"""Data quality of a window: missing, out-of-range and unseen-category shares per feature.

Ranges and categories come from the feature schema (derived from the
training data), widened by the reference rows. Shares are of the window's
rows; a missing value is only counted as missing, never as out of range.
Infinite numeric values count as out of range. For a categorical feature the
out-of-range share is its unseen-category share, so that one metric
(``driftwatch_out_of_range_share``) covers every feature.

>>> import pandas as pd
>>> from driftwatch.schema import FeatureSchema
>>> ref = pd.DataFrame({"age": [20.0, 40.0, 60.0], "car": ["a", "b", "a"]})
>>> q = QualityMonitor().fit(FeatureSchema.from_frame(ref), ref)
>>> w = pd.DataFrame({"age": [10.0, None, 30.0, 70.0], "car": ["a", "z", None, "b"]})
>>> r = q.evaluate(w)
>>> r["age"].missing_share, r["age"].out_of_range_share, r["car"].unseen_category_share
(0.25, 0.5, 0.25)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from driftwatch.schema import FeatureSchema


@dataclass
class FeatureQuality:
    feature: str
    kind: str
    missing_share: float
    out_of_range_share: float
    unseen_category_share: float

    def to_dict(self) -> dict:
        return asdict(self)


class QualityMonitor:
    """Learns allowed ranges and categories at ``fit``; shares per feature at ``evaluate``."""

    def fit(self, schema: FeatureSchema, reference: pd.DataFrame | None = None) -> QualityMonitor:
        self.kinds_ = {f.name: f.kind for f in schema.features}
        self.ranges_: dict[str, tuple[float, float]] = {}
        self.categories_: dict[str, frozenset[str]] = {}
        for f in schema.features:
            col = reference[f.name] if reference is not None and f.name in reference else None
            if f.kind == "numeric":
                lo, hi = f.min, f.max
                if col is not None:
                    x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
                    x = x[np.isfinite(x)]
                    if x.size:
                        lo = x.min() if lo is None else min(lo, x.min())
                        hi = x.max() if hi is None else max(hi, x.max())
                self.ranges_[f.name] = (-np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))
            else:
                cats = set(f.categories or [])
                if col is not None:
                    cats |= {str(v) for v in col.dropna().unique()}
                self.categories_[f.name] = frozenset(cats)
        return self

    def evaluate(self, window: pd.DataFrame) -> dict[str, FeatureQuality]:
        n = len(window)
        out = {}
        for name, kind in self.kinds_.items():
            col = window[name]
            missing = col.isna().to_numpy()
            oor = unseen = 0.0
            if n and kind == "numeric":
                x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
                lo, hi = self.ranges_[name]
                present = ~np.isnan(x)
                oor = float(np.count_nonzero(present & ((x < lo) | (x > hi) | np.isinf(x)))) / n
            elif n:
                allowed = self.categories_[name]
                values = col[~missing].astype(str)
                unseen = oor = float((~values.isin(allowed)).sum()) / n
            out[name] = FeatureQuality(feature=name, kind=kind,
                                       missing_share=float(missing.mean()) if n else 0.0,
                                       out_of_range_share=oor, unseen_category_share=unseen)
        return out
