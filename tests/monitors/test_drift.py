"""Data and prediction drift on seeded Agrawal streams: false alarms within budget, shifts found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.datagen import agrawal
from monitors.drift import DriftMonitor, prediction_frame
from tests.monitors.helpers import NOISE, binomial_limit, make_batch


@pytest.mark.parametrize(("size", "n_windows"), [(100, 400), (1000, 200)])
def test_no_drift_false_alarms_within_budget(request, package, size, n_windows):
    evaluator = request.getfixturevalue(f"evaluator_{size}")
    X, _ = agrawal(size * n_windows, seed=4242 + size, label_noise=NOISE)
    batch = make_batch(package.estimator, X, None)
    dataset_alarms = prediction_alarms = 0
    for lo in range(0, len(X), size):
        sl = slice(lo, lo + size)
        window = type(batch)(features=batch.features.iloc[sl], predictions=batch.predictions.iloc[sl],
                             probabilities=batch.probabilities[sl])
        result = evaluator.evaluate(window)
        dataset_alarms += result.dataset_drift
        prediction_alarms += result.prediction_drift.drifted
    limit = binomial_limit(n_windows, evaluator.budget)
    assert dataset_alarms < limit, f"{dataset_alarms} false dataset-drift alarms in {n_windows} windows"
    assert prediction_alarms < limit, f"{prediction_alarms} false prediction-drift alarms in {n_windows} windows"


@pytest.mark.parametrize(("size", "within"), [(100, 3), (1000, 1)])
def test_covariate_shift_flagged_and_ranked_first(request, package, size, within):
    """Older, richer applicants: age and salary shift (commission follows salary)."""
    evaluator = request.getfixturevalue(f"evaluator_{size}")
    X, _ = agrawal(size * within, seed=99, covariate_shift=0.5, label_noise=NOISE)
    batch = make_batch(package.estimator, X, None)
    flagged = None
    for i, lo in enumerate(range(0, len(X), size)):
        sl = slice(lo, lo + size)
        result = evaluator.evaluate(type(batch)(features=batch.features.iloc[sl],
                                                predictions=batch.predictions.iloc[sl],
                                                probabilities=batch.probabilities[sl]))
        if result.dataset_drift:
            flagged = result
            break
    assert flagged is not None, f"covariate shift not flagged within {within} windows of {size}"
    drifted = set(flagged.drift.drifted_features)
    assert drifted <= {"age", "salary", "commission"}
    ranked = [r["feature"] for r in flagged.ranking]
    assert ranked[:len(drifted)] == [f for f in ranked if f in drifted]
    if size == 1000:
        assert {"age", "salary"} <= drifted
        assert ranked[0] == "age"  # the only feature function 0 uses


def test_prior_shift_flags_prediction_drift(evaluator_1000, package):
    X, _ = agrawal(1000, seed=31, class_balance=0.9, label_noise=NOISE)
    result = evaluator_1000.evaluate(make_batch(package.estimator, X, None))
    assert result.prediction_drift.drifted
    assert result.prediction_drift.score > result.prediction_drift.threshold


def test_thresholds_shrink_with_window_size(evaluator_100, evaluator_1000):
    for name, t100 in evaluator_100.drift_.thresholds_.items():
        assert evaluator_1000.drift_.thresholds_[name] < t100
    # calibrated thresholds differ from Evidently's fixed 0.1 and from one another
    assert len({round(t, 6) for t in evaluator_1000.drift_.thresholds_.values()}) > 1


def test_partial_window_rescales_threshold(evaluator_1000, package):
    X, _ = agrawal(500, seed=8)
    result = evaluator_1000.drift_.evaluate(X)
    for col in result.columns:
        assert col.threshold > evaluator_1000.drift_.thresholds_[col.feature]


def test_missing_column_is_not_drift():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=2000)})
    mon = DriftMonitor(window_size=200, n_resamples=500).fit(ref, {"x": "numeric"})
    result = mon.evaluate(pd.DataFrame({"x": [np.nan] * 200}))
    assert not result.dataset_drift and np.isnan(result.columns[0].score)


def test_monitor_reuses_matching_calibration_only():
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(list("ab"), 2000)})
    kinds = {"x": "numeric", "c": "categorical"}
    first = DriftMonitor(window_size=200, n_resamples=500, seed=3).fit(ref, kinds)
    again = DriftMonitor(window_size=200, n_resamples=500, seed=3).fit(ref, kinds, first.calibration_.to_dict())
    assert again.calibration_reused_ and again.thresholds_ == first.thresholds_
    other = DriftMonitor(window_size=100, n_resamples=500, seed=3).fit(ref, kinds, first.calibration_.to_dict())
    assert not other.calibration_reused_
    changed = ref.assign(x=ref["x"] + 1)
    assert not DriftMonitor(window_size=200, n_resamples=500, seed=3).fit(
        changed, kinds, first.calibration_.to_dict()).calibration_reused_


def test_prediction_frame_kinds():
    frame, kinds = prediction_frame(pd.Series([1, 0, 1.0, "1", None]), "classification")
    assert kinds == {"prediction": "categorical"}
    assert frame["prediction"].tolist()[:4] == ["1", "0", "1", "1"] and pd.isna(frame["prediction"].iloc[4])
    frame, kinds = prediction_frame([1.5, 2.0], "regression")
    assert kinds == {"prediction": "numeric"} and frame["prediction"].dtype == float
