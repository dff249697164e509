"""Concept drift: Agrawal function 0 -> 2 with labels; flagged as concept drift, not as data drift."""

from __future__ import annotations

import numpy as np
import pytest

from models.datagen import agrawal
from monitors.concept import ConceptDriftMonitor, worse_error_rate_p, worse_mean_error_p
from monitors.evaluator import WindowEvaluator
from tests.monitors.helpers import NOISE, make_batch


def test_function_switch_is_concept_drift_not_data_drift(package, evaluator_1000):
    ev = WindowEvaluator(window_size=1000, seed=0).fit(package, evaluator_1000.calibration_)
    results = []
    for i, function in enumerate([0, 0, 0, 2, 2]):
        X, y = agrawal(1000, seed=300 + i, function=function, label_noise=NOISE)
        window = make_batch(package.estimator, X, y, labeled=0.3, seed=i)
        ev.update_errors(ev.errors_of(window))
        results.append(ev.evaluate(window))
    before, after = results[:3], results[3:]
    assert not any(r.concept_drift for r in before)
    assert all(r.concept_drift for r in after)
    assert any(reason.startswith("performance below baseline") for reason in after[0].concept.reasons)
    assert any(reason.startswith("sequential detector") for reason in after[0].concept.reasons)
    assert not any(r.dataset_drift for r in results)
    assert not any(r.prediction_drift.drifted for r in results)
    assert after[0].performance["accuracy"] < package.baseline["accuracy"] - 0.2


def test_window_test_needs_enough_labels():
    mon = ConceptDriftMonitor(min_labeled=30).fit(np.zeros(1000))
    assert not mon.evaluate(np.ones(10)).drifted  # 10 errors of 10: too few rows to test
    assert mon.evaluate(np.ones(30)).drifted


def test_error_rate_test_accounts_for_both_samples():
    # the same 8% against 5%: significant with big samples, not with small ones
    assert worse_error_rate_p(80, 1000, 500, 10000) < 1e-3
    assert worse_error_rate_p(8, 100, 50, 1000) > 0.05
    assert worse_error_rate_p(5, 100, 50, 1000) > 0.4


def test_regression_errors_use_welch():
    rng = np.random.default_rng(0)
    ref = np.abs(rng.normal(size=3000))
    mon = ConceptDriftMonitor("regression").fit(ref)
    assert not mon.evaluate(np.abs(rng.normal(size=200))).drifted
    r = mon.evaluate(np.abs(rng.normal(scale=2.0, size=200)))
    assert r.drifted and r.test == "welch_t"
    assert worse_mean_error_p(np.ones(5), np.ones(5)) == 1.0


def test_detector_state_survives_restart(package, evaluator_1000):
    errors = np.r_[np.zeros(3000), (np.random.default_rng(1).random(2000) < 0.5).astype(float)]
    straight = WindowEvaluator(window_size=1000).fit(package, evaluator_1000.calibration_)
    straight.update_errors(errors)
    first = WindowEvaluator(window_size=1000).fit(package, evaluator_1000.calibration_)
    first.update_errors(errors[:3100])
    again = WindowEvaluator(window_size=1000).fit(package, evaluator_1000.calibration_)
    again.load_state(first.state())
    again.update_errors(errors[3100:])
    assert again.state() == straight.state()
    assert again.concept_.detector_.n_alarms_ >= 1


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_result_serialises(task):
    mon = ConceptDriftMonitor(task).fit(np.abs(np.random.default_rng(0).normal(size=500)) > 1.5
                                        if task == "classification" else np.abs(np.random.default_rng(0).normal(size=500)))
    d = mon.evaluate(np.ones(50)).to_dict()
    assert set(d) == {"drifted", "reasons", "labeled_rows", "window_error", "reference_error", "p_value", "test",
                      "sequential_alarms", "samples_since_alarm"}
