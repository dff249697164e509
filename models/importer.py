"""Bring your own fitted scikit-learn estimator (or Pipeline) and reference data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import joblib
import pandas as pd
from sklearn.base import is_classifier, is_regressor

from driftwatch.schema import FeatureSchema
from models.metrics import score
from models.train import Trained, python_value, reference_batch


class ImportError_(ValueError):
    """The estimator or reference data cannot be used; the message says why."""


def import_estimator(model_file: Path, reference_csv: Path, target: str) -> Trained:
    """Load ``model_file`` (joblib), check it predicts the reference rows, score it.

    The reference must be held-out data (not the rows the model was fitted
    on): the baseline metrics and the drift reference come from it.
    """
    try:
        est = joblib.load(model_file)
    except Exception as e:  # noqa: BLE001 - any unpickling problem is the user's file
        raise ImportError_(f"cannot load {model_file} with joblib: {e}") from e
    if not hasattr(est, "predict"):
        raise ImportError_(f"{model_file} holds a {type(est).__name__}, which has no predict(); "
                           "save a fitted scikit-learn estimator or Pipeline with joblib.dump")
    if not (is_classifier(est) or is_regressor(est)):
        raise ImportError_(f"{type(est).__name__} is neither a classifier nor a regressor")
    ref = pd.read_csv(reference_csv)
    if target not in ref.columns:
        raise ImportError_(f"target column {target!r} not in {reference_csv}; columns: {list(ref.columns)}")
    ref = ref.dropna(subset=[target])
    X, y = ref.drop(columns=[target]), ref[target]
    expected = getattr(est, "feature_names_in_", None)
    if expected is not None:
        missing = sorted(set(expected) - set(X.columns))
        if missing:
            raise ImportError_(f"the reference lacks features the model was fitted on: {missing}")
        X = X[list(expected)]
    schema = FeatureSchema.from_frame(X)
    X = schema.coerce(X)
    task = "classification" if is_classifier(est) else "regression"
    try:
        batch = reference_batch(est, X, y)
    except Exception as e:  # noqa: BLE001
        raise ImportError_(f"the model failed to predict the reference rows: {e}") from e
    classes = [python_value(c) for c in est.classes_] if task == "classification" else None
    if classes is not None:
        # labels read from CSV must compare equal to the model's classes
        batch.target = batch.target.map(lambda v: next((c for c in classes if str(c) == str(v)), v))
    baseline = score(task, batch.target, batch.predictions, batch.probabilities, classes)
    return Trained(estimator=est, task=task, schema=schema, reference=batch, baseline=baseline, classes=classes,
                   trained_at=dt.datetime.fromtimestamp(Path(model_file).stat().st_mtime, dt.timezone.utc)
                   .isoformat(timespec="seconds"),
                   trained_from=f"imported {Path(model_file).name}; reference {Path(reference_csv).name}",
                   train_rows=0)
