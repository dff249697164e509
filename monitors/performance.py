"""Model quality on the labeled rows of a window, and per-instance errors.

Classification: accuracy, F1 (binary: of the second class in ``classes``, as
scikit-learn orders them; multiclass: macro), ROC AUC (binary, or one-vs-rest
macro; None when the labeled rows hold a single class or no probabilities).
Regression: MAE, RMSE. Labels are compared as text, so ``1``, ``1.0`` and
``"1"`` are the same class.

>>> import numpy as np, pandas as pd
>>> y = pd.Series([1, 0, None, 1])
>>> pred = pd.Series([1, 1, 0, 1])
>>> proba = np.array([[.2, .8], [.4, .6], [.9, .1], [.3, .7]])
>>> r = PerformanceMonitor("classification", ["0", "1"]).evaluate(pred, y, proba)
>>> r.labeled_rows, r.labeled_share, r.metrics["accuracy"], r.metrics["roc_auc"]
(3, 0.75, 0.6666666666666666, 1.0)
>>> instance_errors("classification", pred, y).tolist()
[0.0, 1.0, 0.0]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error, roc_auc_score

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")


def label_text(value) -> str:
    """Canonical text of a class label: integral floats lose their ``.0``."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    return str(value)


def labeled_mask(target) -> np.ndarray:
    if target is None:
        return np.zeros(0, dtype=bool)
    return pd.Series(target).notna().to_numpy()


def instance_errors(task: str, predictions, target) -> np.ndarray:
    """Per-instance errors of the labeled rows: 0/1 misclassification, or absolute error."""
    mask = labeled_mask(target)
    pred = pd.Series(predictions).to_numpy()[mask]
    y = pd.Series(target).to_numpy()[mask]
    if task == "regression":
        return np.abs(pred.astype(float) - y.astype(float))
    return np.array([label_text(a) != label_text(b) for a, b in zip(pred, y)], dtype=float)


def classification_metrics(y_true: list[str], y_pred: list[str], proba: np.ndarray | None,
                           classes: list[str] | None) -> dict[str, float | None]:
    out: dict[str, float | None] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    classes = [label_text(c) for c in classes] if classes else sorted(set(y_true) | set(y_pred))
    binary = len(classes) == 2
    if binary:
        out["f1"] = float(f1_score(y_true, y_pred, pos_label=classes[1], average="binary", zero_division=0))
    else:
        out["f1"] = float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0))
    auc = None
    present = set(y_true)
    if proba is not None and len(present) > 1 and present <= set(classes):
        p = np.asarray(proba, dtype=float)
        if binary:
            auc = float(roc_auc_score([y == classes[1] for y in y_true], p[:, 1]))
        else:
            cols = [classes.index(c) for c in sorted(present)]
            sub = p[:, cols]
            sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
            labels = sorted(present)
            auc = float(roc_auc_score(y_true, sub, multi_class="ovr", average="macro", labels=labels)) \
                if len(labels) > 2 else float(roc_auc_score([y == labels[1] for y in y_true], sub[:, 1]))
    out["roc_auc"] = auc
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    return {"mae": float(mean_absolute_error(y_true, y_pred)),
            "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred)))}


@dataclass
class Performance:
    labeled_rows: int
    labeled_share: float
    metrics: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class PerformanceMonitor:
    """Metrics on the labeled rows (``target`` not missing) of a window."""

    def __init__(self, task: str, classes: list[str] | None = None):
        self.task = task
        self.classes = classes

    def evaluate(self, predictions, target, probabilities: np.ndarray | None = None) -> Performance:
        n = len(predictions)
        mask = labeled_mask(target) if target is not None else np.zeros(n, dtype=bool)
        k = int(mask.sum())
        perf = Performance(labeled_rows=k, labeled_share=k / n if n else 0.0)
        names = REGRESSION_METRICS if self.task == "regression" else CLASSIFICATION_METRICS
        if k == 0:
            perf.metrics = {m: None for m in names}
            return perf
        pred = pd.Series(predictions).to_numpy()[mask]
        y = pd.Series(target).to_numpy()[mask]
        if self.task == "regression":
            perf.metrics = regression_metrics(y.astype(float), pred.astype(float))
        else:
            proba = None if probabilities is None else np.asarray(probabilities)[mask]
            perf.metrics = classification_metrics([label_text(v) for v in y], [label_text(v) for v in pred],
                                                  proba, self.classes)
        return perf
