"""Model quality metrics, the same everywhere (baseline, monitor, retraining).

>>> import pandas as pd
>>> score("regression", pd.Series([1.0, 2.0]), pd.Series([1.0, 4.0]), None, None)
{'mae': 1.0, 'rmse': 1.4142135623730951, 'r2': -7.0}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as M


def score(task: str, y_true: pd.Series, y_pred: pd.Series, proba: np.ndarray | None,
          classes: list[Any] | None) -> dict[str, float]:
    """accuracy, f1, roc_auc for classifiers; mae, rmse, r2 for regressors."""
    if task == "regression":
        yt, yp = np.asarray(y_true, float), np.asarray(y_pred, float)
        return {"mae": float(M.mean_absolute_error(yt, yp)),
                "rmse": float(np.sqrt(M.mean_squared_error(yt, yp))),
                "r2": float(M.r2_score(yt, yp)) if len(yt) > 1 else float("nan")}
    yt = pd.Series(y_true).astype(str).to_numpy()
    yp = pd.Series(y_pred).astype(str).to_numpy()
    out = {"accuracy": float(M.accuracy_score(yt, yp))}
    labels = [str(c) for c in classes] if classes else sorted(set(yt) | set(yp))
    binary = len(labels) == 2
    out["f1"] = float(M.f1_score(yt, yp, labels=labels, pos_label=labels[-1] if binary else 1,
                                 average="binary" if binary else "macro", zero_division=0))
    out["roc_auc"] = float("nan")
    if proba is not None and len(set(yt)) > 1:
        try:
            if binary:
                out["roc_auc"] = float(M.roc_auc_score(yt == labels[1], proba[:, 1]))
            else:
                out["roc_auc"] = float(M.roc_auc_score(yt, proba, multi_class="ovr", labels=labels))
        except ValueError:
            pass
    return out
