"""WindowEvaluator: the JSON shape of a window, calibration reuse, regression models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from driftwatch.package import Batch, ModelPackage
from driftwatch.schema import FeatureSchema
from models.datagen import agrawal
from monitors.evaluator import WindowEvaluator, json_safe
from tests.monitors.helpers import NOISE, make_batch

KEYS = {"model", "version", "rows", "window_size", "budget", "features", "drift_share", "n_drifted",
        "dataset_drift", "prediction_drift", "quality", "performance", "baseline", "labeled_rows",
        "labeled_share", "estimated_performance", "concept_drift", "concept_reasons", "concept", "ranking"}


def test_to_dict_is_strict_json_with_every_part(evaluator_1000, package):
    X, y = agrawal(1000, seed=21, label_noise=NOISE)
    result = evaluator_1000.evaluate(make_batch(package.estimator, X, y, labeled=0.4))
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(d) == KEYS
    assert [f["feature"] for f in d["features"]] == package.schema.names
    assert set(d["features"][0]) == {"feature", "kind", "method", "score", "threshold", "p_value", "drifted"}
    assert {f["method"] for f in d["features"]} == {"wasserstein", "jensenshannon"}
    assert set(d["prediction_drift"]) == set(d["features"][0])
    assert set(d["quality"]["car"]) == {"feature", "kind", "missing_share", "out_of_range_share",
                                        "unseen_category_share"}
    assert set(d["performance"]) == {"accuracy", "f1", "roc_auc"}
    assert d["baseline"] == package.baseline
    assert 0.3 < d["labeled_share"] < 0.5 and d["labeled_rows"] == round(d["labeled_share"] * 1000)
    assert d["estimated_performance"]["accuracy"] == pytest.approx(package.baseline["accuracy"], abs=0.03)
    assert d["concept_drift"] is False and d["concept_reasons"] == []
    assert [r["rank"] for r in d["ranking"]] == list(range(1, 10))


def test_calibration_json_is_reused(evaluator_1000, package):
    cached = json.loads(json.dumps(evaluator_1000.calibration_, allow_nan=False))
    again = WindowEvaluator(window_size=1000, seed=0).fit(package, cached)
    assert again.drift_.calibration_reused_ and again.prediction_drift_.calibration_reused_
    assert again.calibration_ == evaluator_1000.calibration_
    other_size = WindowEvaluator(window_size=500, seed=0, importance=False).fit(package, cached)
    assert not other_size.drift_.calibration_reused_
    assert other_size.calibration_["thresholds"]["age"] > cached["thresholds"]["age"]


def test_unlabeled_window_has_no_performance(evaluator_100, package):
    X, _ = agrawal(100, seed=22)
    r = evaluator_100.evaluate(make_batch(package.estimator, X, None))
    assert r.labeled_rows == 0 and r.performance == {"accuracy": None, "f1": None, "roc_auc": None}
    assert r.concept is not None and not r.concept_drift and r.rows == 100


def test_json_safe():
    assert json_safe({"a": float("nan"), "b": [np.float32(1.5), np.int64(2), np.bool_(True)]}) == \
        {"a": None, "b": [1.5, 2, True]}


def regression_package() -> ModelPackage:
    def frame(n, seed, shift=0.0):
        X, _ = agrawal(n, seed=seed, covariate_shift=shift)
        y = X["salary"] / 1000 + X["age"] + np.random.default_rng(seed).normal(scale=5, size=n)
        return X[["salary", "age", "elevel"]], y
    X, y = frame(3000, 1)
    est = Pipeline([("pre", ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), ["elevel"])],
                                              remainder="passthrough")),
                    ("lr", LinearRegression())]).fit(X, y)
    Xr, yr = frame(3000, 2)
    ref = Batch(features=Xr, predictions=pd.Series(est.predict(Xr)), target=yr)
    return ModelPackage(name="price", version="3", task="regression", estimator=est,
                        schema=FeatureSchema.from_frame(X), reference=ref, baseline={"mae": 4.0, "rmse": 5.0})


def test_regression_model():
    pkg = regression_package()
    ev = WindowEvaluator(window_size=500, n_resamples=800).fit(pkg)
    X, _ = agrawal(500, seed=9)
    y = X["salary"] / 1000 + X["age"] + np.random.default_rng(9).normal(scale=5, size=500)
    X = X[["salary", "age", "elevel"]]
    window = Batch(features=X, predictions=pd.Series(pkg.estimator.predict(X)), target=y)
    ev.update_errors(ev.errors_of(window))
    d = ev.evaluate(window).to_dict()
    assert set(d["performance"]) == {"mae", "rmse"} and d["performance"]["mae"] == pytest.approx(4.0, abs=0.6)
    assert d["prediction_drift"]["method"] == "wasserstein" and not d["prediction_drift"]["drifted"]
    assert d["estimated_performance"] == {} and not d["concept_drift"]
    worse = Batch(features=X, predictions=window.predictions + 15.0, target=y)
    ev.update_errors(ev.errors_of(worse))
    r = ev.evaluate(worse)
    assert r.concept_drift and r.prediction_drift.drifted
    html = ev.html_report(window)
    assert "Regression quality on the 500 labeled rows" in html
