"""Training: pipelines, the held-out reference split and baseline metrics."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tqdm.auto import tqdm

from driftwatch.package import Batch, Task
from driftwatch.schema import FeatureSchema
from models.metrics import score

Estimator = Literal["hgb", "logreg", "rf"]
ESTIMATORS: tuple[str, ...] = ("hgb", "logreg", "rf")


def infer_task(y: pd.Series) -> Task:
    """Classification for strings, booleans and few distinct integers; else regression.

    >>> infer_task(pd.Series([0, 1, 1])), infer_task(pd.Series([0.5, 1.25, 3.0]))
    ('classification', 'regression')
    """
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.dropna()
    if pd.api.types.is_integer_dtype(values) or np.all(np.mod(values, 1) == 0):
        if values.nunique() <= 20:
            return "classification"
    return "regression"


def build_pipeline(schema: FeatureSchema, task: Task, estimator: Estimator = "hgb", seed: int = 0) -> Pipeline:
    """Imputation, scaling and one-hot encoding in front of the estimator."""
    transformers = []
    if schema.numeric:
        transformers.append(("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), schema.numeric))
    if schema.categorical:
        transformers.append(("cat", make_pipeline(
            SimpleImputer(strategy="most_frequent"),
            OneHotEncoder(handle_unknown="ignore", sparse_output=False)), schema.categorical))
    pre = ColumnTransformer(transformers)
    if task == "classification":
        model = {"hgb": lambda: HistGradientBoostingClassifier(max_iter=200, random_state=seed),
                 "logreg": lambda: LogisticRegression(max_iter=1000),
                 "rf": lambda: RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)}[estimator]()
    else:
        model = {"hgb": lambda: HistGradientBoostingRegressor(max_iter=200, random_state=seed),
                 "logreg": lambda: Ridge(),
                 "rf": lambda: RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1)}[estimator]()
    return Pipeline([("pre", pre), ("model", model)])


def python_value(v: Any) -> Any:
    """numpy scalars to plain Python (JSON-safe)."""
    return v.item() if isinstance(v, np.generic) else v


def outputs(estimator: Any, X: pd.DataFrame) -> tuple[pd.Series, np.ndarray | None]:
    """Predictions and (for classifiers) probabilities, as the service computes them."""
    pred = pd.Series(estimator.predict(X), index=X.index)
    proba = estimator.predict_proba(X) if is_classifier(estimator) and hasattr(estimator, "predict_proba") else None
    return pred, proba


def reference_batch(estimator: Any, X: pd.DataFrame, y: pd.Series) -> Batch:
    pred, proba = outputs(estimator, X)
    return Batch(features=X.reset_index(drop=True), predictions=pred.reset_index(drop=True),
                 probabilities=proba, target=y.reset_index(drop=True))


@dataclass
class Trained:
    """A fitted estimator with the facts the registry stores beside it."""

    estimator: Any
    task: Task
    schema: FeatureSchema
    reference: Batch
    baseline: dict[str, float]
    classes: list[Any] | None
    trained_at: str
    trained_from: str
    train_rows: int


def fit_and_package(estimator: Any, X: pd.DataFrame, y: pd.Series, *, task: Task, trained_from: str,
                    reference_share: float = 0.25, seed: int = 0, progress: bool = True,
                    schema: FeatureSchema | None = None) -> Trained:
    """Split off a held-out reference, fit on the rest, score the reference.

    The reference never contains training rows: the monitor compares
    production traffic with it, and baseline metrics are measured on it.
    """
    steps = tqdm(total=4, desc="train", unit="step", disable=not progress)
    schema = schema or FeatureSchema.from_frame(X)
    X = schema.coerce(X)
    strat = y if task == "classification" and y.value_counts().min() >= 2 else None
    X_tr, X_ref, y_tr, y_ref = train_test_split(X, y, test_size=reference_share, random_state=seed, stratify=strat)
    steps.set_postfix_str(f"{len(X_tr)} training rows, {len(X_ref)} reference rows")
    steps.update()
    estimator.fit(X_tr, y_tr)
    steps.update()
    ref = reference_batch(estimator, X_ref, y_ref)
    steps.update()
    classes = [python_value(c) for c in estimator.classes_] if task == "classification" else None
    baseline = score(task, ref.target, ref.predictions, ref.probabilities, classes)
    steps.update()
    steps.close()
    return Trained(estimator=estimator, task=task, schema=schema, reference=ref, baseline=baseline,
                   classes=classes, trained_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                   trained_from=trained_from, train_rows=len(X_tr))


def train_frame(frame: pd.DataFrame, target: str, *, task: Task | None = None, estimator: Estimator = "hgb",
                trained_from: str, seed: int = 0, progress: bool = True) -> Trained:
    """Train our standard pipeline on a table with a target column."""
    if target not in frame.columns:
        raise ValueError(f"target column {target!r} not in the data; columns are {list(frame.columns)}")
    frame = frame.dropna(subset=[target])
    y = frame[target]
    X = frame.drop(columns=[target])
    task = task or infer_task(y)
    schema = FeatureSchema.from_frame(X)
    return fit_and_package(build_pipeline(schema, task, estimator, seed), X, y, task=task,
                           trained_from=trained_from, seed=seed, progress=progress, schema=schema)


def refit(estimator: Any, X: pd.DataFrame, y: pd.Series) -> Any:
    """A fresh copy of the same pipeline, fitted on new data (retraining)."""
    return clone(estimator).fit(X, y)
