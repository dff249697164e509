"""Where did a model's error rate change? (one change point, Bernoulli likelihood ratio)

Used by retraining: after a concept change, only the rows after the change
describe the new concept.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> errors = np.concatenate([rng.random(800) < 0.05, rng.random(400) < 0.45])
>>> cp = change_point(errors)
>>> 780 <= cp <= 820
True
>>> change_point(rng.random(1000) < 0.05) is None
True
"""

from __future__ import annotations

import numpy as np


def _loglik(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    p = np.clip(k / np.maximum(n, 1), 1e-12, 1 - 1e-12)
    return k * np.log(p) + (n - k) * np.log(1 - p)


def change_point(errors, *, min_segment: int = 50, threshold: float = 25.0) -> int | None:
    """Index of the first row after the most likely change of error rate, if the
    log-likelihood ratio exceeds ``threshold`` and the rate went *up*; else None.

    A threshold of 25 (ratio e^25) keeps false detections on stable streams of
    a few thousand rows far below one in a thousand.
    """
    e = np.asarray(errors, dtype=float)
    n = len(e)
    if n < 2 * min_segment:
        return None
    cum = np.cumsum(e)
    idx = np.arange(min_segment, n - min_segment + 1)
    k1, n1 = cum[idx - 1], idx.astype(float)
    k2, n2 = cum[-1] - k1, n - n1
    llr = _loglik(k1, n1) + _loglik(k2, n2) - _loglik(np.array([cum[-1]]), np.array([float(n)]))[0]
    best = int(np.argmax(llr))
    if llr[best] < threshold or k2[best] / n2[best] <= k1[best] / n1[best]:
        return None
    return int(idx[best])
