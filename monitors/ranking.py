"""Which drifted features matter: drift (score / threshold) weighted by importance to the model.

Importance is the permutation importance of each feature for the model's own
predictions on the reference rows (share of changed predictions for
classifiers, drop in R^2 against the unpermuted predictions for regressors):
how much the model relies on the feature, with no labels needed. It is
computed once at ``fit``.

>>> rank_features({"a": 3.0, "b": 1.5, "c": 0.2}, {"a", "b"}, {"a": 0.1, "b": 0.9, "c": 0.0})[0]["feature"]
'b'
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def model_importance(estimator, features: pd.DataFrame, task: str, *, max_rows: int = 1000,
                     n_repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Permutation importance of each column for the estimator's own predictions, normalised to sum 1.

    All permuted copies go to the model in one ``predict`` call (pipelines
    cost mostly per call, not per row).
    """
    X = features
    if len(X) > max_rows:
        X = X.sample(n=max_rows, random_state=seed)
    X = X.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    copies = []
    for name in X.columns:
        for _ in range(n_repeats):
            c = X.copy()
            c[name] = X[name].to_numpy()[rng.permutation(len(X))]
            copies.append(c)
    pred = np.asarray(estimator.predict(pd.concat([X] + copies, ignore_index=True)))
    base, blocks = pred[:len(X)], pred[len(X):].reshape(len(copies), len(X))
    if task == "regression":
        base = base.astype(float)
        var = float(np.var(base)) or 1.0
        # drop in R^2 against the unpermuted predictions: mean squared change over their variance
        drops = ((blocks.astype(float) - base[None, :]) ** 2).mean(axis=1) / var
    else:
        drops = (blocks.astype(str) != base.astype(str)[None, :]).mean(axis=1)
    raw = drops.reshape(len(X.columns), n_repeats).mean(axis=1)
    total = raw.sum()
    weights = raw / total if total > 0 else np.full(len(raw), 1.0 / len(raw))
    return {str(c): float(w) for c, w in zip(X.columns, weights)}


def rank_features(ratios: dict[str, float], drifted: set[str], importance: dict[str, float]) -> list[dict]:
    """All features, drifted first, each group by ratio x importance (ties: by ratio).

    ``ratios``: drift score / calibrated threshold per feature (> 1 means drifted).
    """
    rows = [{"feature": f, "drifted": f in drifted, "drift_ratio": float(r),
             "importance": float(importance.get(f, 0.0)),
             "weight": float(r) * float(importance.get(f, 0.0))} for f, r in ratios.items()]
    rows.sort(key=lambda d: (d["drifted"], d["weight"], d["drift_ratio"]), reverse=True)
    for i, d in enumerate(rows, 1):
        d["rank"] = i
    return rows
