"""Calibration: deterministic per seed, JSON round-trip, tail model sane against many resamples."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from monitors.calibration import Calibration, NullTail, calibrate, resample_windows
from monitors.stattests import NumericReference


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "x": rng.normal(size=3000),
        "k": rng.integers(0, 40, 3000).astype(float),  # heavy ties
        "c": rng.choice(list("abcdef"), 3000, p=[.4, .2, .2, .1, .05, .05]),
    })


KINDS = {"x": "numeric", "k": "numeric", "c": "categorical"}


def test_same_seed_same_calibration(reference):
    a = calibrate(reference, KINDS, 300, n_resamples=600, seed=4)
    b = calibrate(reference, KINDS, 300, n_resamples=600, seed=4)
    c = calibrate(reference, KINDS, 300, n_resamples=600, seed=5)
    assert a.to_dict() == b.to_dict()
    assert a.to_dict() != c.to_dict()


def test_json_round_trip(reference):
    cal = calibrate(reference, KINDS, 300, n_resamples=600, seed=4)
    back = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert back.to_dict() == cal.to_dict()
    for name in KINDS:
        for alpha in (0.2, 0.01, 1e-4):
            assert back.threshold(name, alpha) == cal.threshold(name, alpha)
        assert back.p_value(name, 0.3) == cal.p_value(name, 0.3)


def test_rejects_unknown_format(reference):
    data = calibrate(reference, {"x": "numeric"}, 300, n_resamples=200).to_dict()
    data["version"] = 99
    with pytest.raises(ValueError):
        Calibration.from_dict(data)


def test_threshold_and_p_value_are_consistent(reference):
    cal = calibrate(reference, KINDS, 300, n_resamples=600, seed=1)
    for name in KINDS:
        thresholds = [cal.threshold(name, a) for a in (0.3, 0.05, 1e-3, 1e-5)]
        assert thresholds == sorted(thresholds)
        for a in (0.05, 1e-3, 1e-5):
            assert cal.p_value(name, cal.threshold(name, a)) == pytest.approx(a, rel=1e-6)


def test_small_reference_uses_half_and_rescales(reference):
    small = reference.iloc[:500]
    cal = calibrate(small, {"x": "numeric"}, 400, n_resamples=400, seed=0)
    assert cal.window_size == 400
    # thresholds of a 400-row window against 500 rows sit between those of 250 and 500-row windows
    assert 0 < cal.threshold("x", 1e-3) < calibrate(small, {"x": "numeric"}, 100, n_resamples=400).threshold("x", 1e-3)


def test_tail_model_is_not_optimistic_against_many_resamples(reference):
    """Exceedances of the 1e-3 threshold fitted on 2,000 resamples, counted in 20,000 more."""
    col = reference["k"].to_numpy()
    stat = NumericReference.fit(col)
    many = stat.resample_scores(col, resample_windows(len(col), 300, 20000, seed=99))
    fitted = NullTail.fit(stat.method, stat.resample_scores(col, resample_windows(len(col), 300, 2000, seed=1)))
    rate = float(np.mean(many > fitted.threshold(1e-3)))
    assert rate < 3e-3  # nominal 1e-3: 20 expected; 60 would be a 3x miss


def test_resample_windows_are_distinct_rows():
    w = resample_windows(1000, 100, 50, seed=0)
    assert w.shape == (50, 100)
    assert all(len(set(row)) == 100 for row in w)
    assert (resample_windows(1000, 100, 50, seed=0) == w).all()
