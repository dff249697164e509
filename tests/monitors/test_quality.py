"""Missing, out-of-range and unseen-category shares against the schema and the reference."""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftwatch.schema import Feature, FeatureSchema
from models.datagen import agrawal
from monitors.quality import QualityMonitor


def test_clean_traffic_has_no_quality_issues(package):
    X, _ = agrawal(1000, seed=3)
    q = QualityMonitor().fit(package.schema, package.reference.features).evaluate(X)
    assert all(v.missing_share == 0 and v.out_of_range_share == 0 and v.unseen_category_share == 0
               for v in q.values())


def test_shares_per_kind():
    schema = FeatureSchema(features=[
        Feature(name="x", kind="numeric", min=0.0, max=10.0, allow_missing=True),
        Feature(name="c", kind="categorical", categories=["a", "b"]),
    ])
    ref = pd.DataFrame({"x": [0.0, 12.0], "c": ["a", "b"]})  # the reference widens the range to 12
    q = QualityMonitor().fit(schema, ref)
    w = pd.DataFrame({"x": [np.nan, 11.0, 13.0, np.inf, -1.0, 5.0, np.nan, 1.0],
                      "c": ["a", "z", None, "b", "y", "a", "a", "a"]})
    r = q.evaluate(w)
    assert r["x"].missing_share == 2 / 8
    assert r["x"].out_of_range_share == 3 / 8  # 13, inf, -1
    assert r["c"].missing_share == 1 / 8
    assert r["c"].unseen_category_share == r["c"].out_of_range_share == 2 / 8
    assert q.evaluate(w.iloc[:0])["x"].missing_share == 0.0


def test_schema_without_reference():
    schema = FeatureSchema(features=[Feature(name="x", kind="numeric", min=0.0, max=1.0)])
    r = QualityMonitor().fit(schema).evaluate(pd.DataFrame({"x": [0.5, 2.0]}))
    assert r["x"].out_of_range_share == 0.5
