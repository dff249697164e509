"""Test helpers: a small Agrawal loan model packaged like ``models`` packages it, windows, bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

from driftwatch.package import Batch, ModelPackage
from driftwatch.schema import FeatureSchema
from models.datagen import CATEGORICAL, agrawal
from monitors.performance import classification_metrics, label_text


def make_pipeline() -> Pipeline:
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL)],
                            remainder="passthrough")
    return Pipeline([("pre", pre), ("clf", DecisionTreeClassifier(max_depth=6, min_samples_leaf=20, random_state=0))])


def make_batch(estimator, X: pd.DataFrame, y: pd.Series | None, labeled: float = 1.0, seed: int = 0) -> Batch:
    """Features, the model's outputs and (a share of) the labels, as the runner would build a window."""
    pred = pd.Series(estimator.predict(X))
    proba = estimator.predict_proba(X)
    target = None
    if y is not None:
        target = y.astype(float).reset_index(drop=True)
        if labeled < 1.0:
            keep = np.random.default_rng(seed).random(len(target)) < labeled
            target = target.where(keep)
    return Batch(features=X.reset_index(drop=True), predictions=pred, probabilities=proba, target=target)


NOISE = 0.05  # label noise of every stream in these tests: the model errs on about 5% of rows


def make_package(n_train: int = 5000, n_ref: int = 5000, seed: int = 1) -> ModelPackage:
    X, y = agrawal(n_train, seed=seed, label_noise=NOISE)
    est = make_pipeline().fit(X, y)
    Xr, yr = agrawal(n_ref, seed=seed + 1000, label_noise=NOISE)
    ref = make_batch(est, Xr, yr)
    classes = [label_text(c) for c in est.classes_]
    baseline = classification_metrics([label_text(v) for v in yr], [label_text(v) for v in ref.predictions],
                                      ref.probabilities, classes)
    return ModelPackage(name="loans", version="1", task="classification", estimator=est,
                        schema=FeatureSchema.from_frame(X), reference=ref, baseline=baseline, classes=classes)


def binomial_limit(n: int, rate: float, p: float = 1e-3) -> int:
    """Smallest k with P(X >= k) < p for X ~ Binomial(n, rate): more alarms than k - 1 is evidence against rate."""
    from scipy.stats import binom
    k = 0
    while binom.sf(k - 1, n, rate) >= p:
        k += 1
    return k
