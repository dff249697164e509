"""Label-free accuracy estimate follows true accuracy under covariate shift."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from monitors.estimate import ConfidenceEstimator


def draw(n, center, spread, rng):
    """Fixed concept P(y | x) = sigmoid(2 x); only where traffic lies changes."""
    x = rng.normal(center, spread, size=(n, 1))
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * x[:, 0]))).astype(int)
    return x, y


def test_estimate_tracks_accuracy_when_traffic_moves():
    rng = np.random.default_rng(0)
    model = LogisticRegression().fit(*draw(4000, 0.0, 2.0, rng))
    Xr, yr = draw(4000, 0.0, 2.0, rng)
    est = ConfidenceEstimator().fit(model.predict_proba(Xr), model.predict(Xr) == yr)
    estimates = []
    for center, spread in ((0.0, 2.0), (0.0, 0.4), (2.5, 1.0)):  # as reference, uncertain region, easy region
        Xw, yw = draw(3000, center, spread, rng)
        true = float((model.predict(Xw) == yw).mean())
        estimates.append(est.estimate(model.predict_proba(Xw)))
        assert estimates[-1] == pytest.approx(true, abs=0.03), (center, spread)
    assert estimates[1] < estimates[0] - 0.1 < estimates[2] - 0.1


def test_without_labels_falls_back_to_raw_confidence():
    proba = np.array([[0.9, 0.1], [0.3, 0.7]] * 10)
    est = ConfidenceEstimator().fit(proba, np.full(20, np.nan))
    assert not est.calibrated_ and est.estimate(proba) == pytest.approx(0.8)
    assert est.estimate(np.zeros((0, 2))) is None
