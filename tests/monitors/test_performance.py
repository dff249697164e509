"""Metrics on labeled rows: binary, multiclass, regression; label text normalisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from monitors.performance import PerformanceMonitor, instance_errors, label_text


def test_binary_matches_sklearn_on_labeled_rows():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p1 = np.clip(y * 0.6 + rng.random(400) * 0.5, 0, 1)
    proba = np.column_stack([1 - p1, p1])
    pred = (p1 > 0.5).astype(int)
    target = pd.Series(y.astype(float)).where(rng.random(400) < 0.5)  # half unlabeled
    r = PerformanceMonitor("classification", ["0", "1"]).evaluate(pd.Series(pred), target, proba)
    m = target.notna().to_numpy()
    assert r.labeled_rows == m.sum() and r.labeled_share == pytest.approx(m.mean())
    assert r.metrics["accuracy"] == pytest.approx((pred[m] == y[m]).mean())
    assert r.metrics["f1"] == pytest.approx(f1_score(y[m], pred[m]))
    assert r.metrics["roc_auc"] == pytest.approx(roc_auc_score(y[m], p1[m]))


def test_multiclass_macro_and_string_labels():
    rng = np.random.default_rng(1)
    classes = ["a", "b", "c"]
    y = rng.choice(classes, 300)
    proba = rng.dirichlet([1, 1, 1], 300)
    proba[np.arange(300), [classes.index(v) for v in y]] += 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    pred = np.array(classes)[proba.argmax(axis=1)]
    r = PerformanceMonitor("classification", classes).evaluate(pd.Series(pred), pd.Series(y), proba)
    assert r.metrics["f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert r.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", labels=classes))


def test_single_class_has_no_auc_and_no_labels_no_metrics():
    mon = PerformanceMonitor("classification", ["0", "1"])
    r = mon.evaluate(pd.Series([1, 1]), pd.Series([1, 1]), np.array([[.2, .8], [.3, .7]]))
    assert r.metrics["accuracy"] == 1.0 and r.metrics["roc_auc"] is None
    empty = mon.evaluate(pd.Series([1, 0]), None, None)
    assert empty.labeled_rows == 0 and empty.metrics == {"accuracy": None, "f1": None, "roc_auc": None}


def test_regression():
    y = pd.Series([1.0, 2.0, None, 4.0])
    pred = pd.Series([1.5, 2.0, 9.0, 2.0])
    r = PerformanceMonitor("regression").evaluate(pred, y)
    assert r.metrics["mae"] == pytest.approx((0.5 + 0 + 2) / 3)
    assert r.metrics["rmse"] == pytest.approx(np.sqrt((0.25 + 4) / 3))
    assert instance_errors("regression", pred, y).tolist() == [0.5, 0.0, 2.0]


def test_label_text():
    assert [label_text(v) for v in (1, 1.0, "1", np.int64(1), True, "yes", 2.5)] == ["1"] * 5 + ["yes", "2.5"]
