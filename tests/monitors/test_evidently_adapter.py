"""Evidently itself: a Report with the drift preset gives our scores; the HTML report renders."""

from __future__ import annotations

import numpy as np
import pytest

from models.datagen import agrawal
from monitors.evidently_adapter import drift_report, report_drift_scores
from tests.monitors.helpers import NOISE, make_batch


def test_report_scores_equal_ours(evaluator_1000, package):
    X, _ = agrawal(1000, seed=17, covariate_shift=0.3)
    ours = evaluator_1000.drift_.evaluate(X)
    snapshot = drift_report(package.reference.features, X, package.schema)  # Evidently's default methods
    theirs = report_drift_scores(snapshot)
    assert set(theirs) == set(package.schema.names)
    for col in ours.columns:
        assert col.score == pytest.approx(theirs[col.feature], rel=1e-12, abs=1e-15), col.feature


def test_html_report_with_labels(evaluator_1000, package):
    X, y = agrawal(300, seed=18, label_noise=NOISE)
    window = make_batch(package.estimator, X, y, labeled=0.5)
    text = evaluator_1000.html_report(window)
    assert text.startswith("<!DOCTYPE html>")
    assert "Data drift and data quality" in text and "Classification quality on the" in text


def test_html_report_without_labels(evaluator_1000, package):
    X, _ = agrawal(200, seed=19)
    window = make_batch(package.estimator, X, None)
    text = evaluator_1000.html_report(window)
    assert "Data drift and data quality" in text and "Classification quality" not in text
    assert np.isfinite(len(text))
