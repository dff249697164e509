"""Training: pipeline, held-out reference, baseline metrics; and the demo package the CLI stored."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest

from driftwatch.schema import FeatureSchema
from driftwatch.store import Store
from models.datagen import FEATURES, TARGET, demo_frame
from models.train import infer_task, train_frame


@pytest.fixture(scope="module")
def trained():
    frame = demo_frame(1200, seed=9)
    return frame, train_frame(frame, TARGET, estimator="rf", trained_from="unit test", seed=0, progress=False)


def test_classifier_with_held_out_reference(trained):
    frame, t = trained
    assert t.task == "classification" and t.classes == [0, 1]
    assert t.train_rows == 900 and len(t.reference) == 300, "a quarter is held out"
    ref = t.reference.features
    assert list(ref.columns) == FEATURES
    # the reference rows are rows of the data (salary is continuous: it identifies a row) ...
    assert set(ref["salary"]) <= set(frame["salary"])
    # ... and its predictions / probabilities are the model's on exactly those rows
    pred = t.estimator.predict(t.schema.coerce(ref))
    assert (pred == t.reference.predictions.to_numpy()).all()
    assert t.reference.probabilities.shape == (300, 2)
    assert np.allclose(t.reference.probabilities.sum(axis=1), 1.0)
    assert t.reference.target.isin([0, 1]).all()
    assert set(t.baseline) == {"accuracy", "f1", "roc_auc"}
    assert t.baseline["accuracy"] > 0.8 and 0.8 < t.baseline["roc_auc"] <= 1.0


def test_regression_and_task_inference():
    frame = demo_frame(800, seed=3)
    frame["amount"] = frame["loan"] * 0.1 + frame["salary"] * 0.01
    t = train_frame(frame.drop(columns=[TARGET]), "amount", estimator="logreg", trained_from="t", progress=False)
    assert t.task == "regression" and t.classes is None and t.reference.probabilities is None
    assert set(t.baseline) == {"mae", "rmse", "r2"} and t.baseline["r2"] > 0.9
    assert infer_task(pd.Series(["a", "b"])) == "classification"
    assert infer_task(pd.Series([True, False])) == "classification"
    assert infer_task(pd.Series(np.arange(100) * 1.0)) == "regression"


def test_missing_target_is_a_clear_error():
    with pytest.raises(ValueError, match="not in the data"):
        train_frame(demo_frame(50, seed=1), "nope", trained_from="t", progress=False)


@pytest.mark.slow
def test_cli_demo_package_in_the_model_store(demo_model):
    """``driftwatch train --demo`` stored estimator, schema, reference and baseline, and made it production."""
    assert f"{demo_model.name}:{demo_model.version} is now production" in demo_model.train_output
    path = demo_model.path
    meta = json.loads((path / "package.json").read_text())
    assert meta["task"] == "classification" and meta["classes"] == [0, 1]
    assert (meta["train_rows"], meta["reference_rows"]) == (3000, 1000)
    assert set(meta["baseline"]) == {"accuracy", "f1", "roc_auc"} and meta["baseline"]["accuracy"] > 0.8
    assert "rows=4000" in meta["trained_from"] and meta["trained_at"]
    schema = FeatureSchema.model_validate(meta["schema"])
    assert schema.names == FEATURES
    assert schema.feature("car").categories and schema.feature("age").max == 80.0
    ref = joblib.load(path / "reference.joblib")
    assert len(ref["features"]) == len(ref["predictions"]) == len(ref["target"]) == 1000
    assert ref["probabilities"].shape == (1000, 2)
    est = joblib.load(path / "estimator.joblib")
    assert (est.predict(schema.coerce(ref["features"])) == ref["predictions"].to_numpy()).all()

    store = Store(f"sqlite:///{demo_model.data_dir / 'driftwatch.db'}")
    prod = store.production()
    assert (prod.model_name, prod.model_version, prod.actor) == (demo_model.name, demo_model.version, "driftwatch train")
    store.dispose()
