"""Label-free accuracy estimate of a classifier from its confidence.

On the reference's labeled rows, isotonic regression maps the model's top
probability to the chance that the prediction is right. A window's expected
accuracy is then the mean calibrated confidence of its rows: it falls when
traffic moves to regions where the model is unsure (covariate shift), before
any label arrives. It cannot see a change of concept where the model stays
confident: that is what labels and ``monitors.concept`` are for.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> conf = rng.uniform(0.5, 1.0, 5000)
>>> proba = np.column_stack([conf, 1 - conf])
>>> correct = rng.random(5000) < conf        # the model is calibrated here
>>> est = ConfidenceEstimator().fit(proba, correct)
>>> round(est.estimate(proba), 2), round(float(correct.mean()), 2)
(0.74, 0.74)
>>> round(est.estimate(np.column_stack([np.full(100, .6), np.full(100, .4)])), 1)   # unsure rows
0.6
"""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression


class ConfidenceEstimator:
    """Expected accuracy = mean over rows of P(correct | top probability), learned on the reference."""

    def __init__(self, min_rows: int = 50):
        self.min_rows = min_rows

    def fit(self, probabilities, correct) -> ConfidenceEstimator:
        """``correct``: 1/0 per reference row (NaN where unlabeled). Too few labels: raw confidence is used."""
        conf = np.max(np.asarray(probabilities, dtype=float), axis=1)
        y = np.asarray(correct, dtype=float)
        keep = np.isfinite(y) & np.isfinite(conf)
        self.calibrated_ = int(keep.sum()) >= self.min_rows
        if self.calibrated_:
            self.isotonic_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
            self.isotonic_.fit(conf[keep], y[keep])
            self.reference_accuracy_ = float(y[keep].mean())
        else:
            self.isotonic_ = None
            self.reference_accuracy_ = float(conf.mean())
        return self

    def estimate(self, probabilities) -> float | None:
        """Expected accuracy of the rows; None for an empty window."""
        p = np.asarray(probabilities, dtype=float)
        if p.size == 0:
            return None
        conf = np.max(p, axis=1)
        conf = conf[np.isfinite(conf)]
        if conf.size == 0:
            return None
        if self.isotonic_ is None:
            return float(conf.mean())
        return float(self.isotonic_.predict(conf).mean())
