"""Demo data: realistic, seeded, with covariate shift, prior shift and concept drift on demand."""

from __future__ import annotations

import pandas as pd
import pytest

from models.datagen import CATEGORICAL, FEATURES, TARGET, agrawal, demo_frame


def test_same_seed_same_rows_other_seed_other_rows():
    X1, y1 = agrawal(500, seed=11)
    X2, y2 = agrawal(500, seed=11)
    pd.testing.assert_frame_equal(X1, X2)
    pd.testing.assert_series_equal(y1, y2)
    X3, _ = agrawal(500, seed=12)
    assert not X1.equals(X3)


def test_features_are_numeric_and_categorical():
    X, y = agrawal(3000, seed=1)
    assert list(X.columns) == FEATURES and len(X) == 3000
    for c in CATEGORICAL:
        assert X[c].dtype == object and X[c].str.contains("_").all()
    numeric = [c for c in FEATURES if c not in CATEGORICAL]
    assert all(pd.api.types.is_float_dtype(X[c]) for c in numeric)
    assert X["salary"].between(20000, 150000).all()
    assert X["age"].between(20, 80).all()
    assert ((X["salary"] >= 75000) == (X["commission"] == 0)).all(), "commission depends on salary"
    assert set(y.unique()) == {0, 1}
    assert 0.2 < y.mean() < 0.8


def test_covariate_shift_moves_features_not_the_rule():
    X0, _ = agrawal(4000, seed=2)
    X1, _ = agrawal(4000, seed=2, covariate_shift=1.0)
    assert X1["salary"].mean() > X0["salary"].mean() + 10000
    assert X1["age"].mean() > X0["age"].mean() + 3


@pytest.mark.parametrize("balance", [0.2, 0.8])
def test_prior_shift(balance):
    _, y = agrawal(4000, seed=3, class_balance=balance)
    assert abs(y.mean() - balance) < 0.04


def test_concept_drift_changes_labels_of_the_same_features():
    X0, y0 = agrawal(3000, seed=4, function=0)
    X1, y1 = agrawal(3000, seed=4, function=2)
    pd.testing.assert_frame_equal(X0, X1)
    assert (y0 != y1).mean() > 0.1


def test_demo_frame_has_noisy_labels():
    clean = agrawal(4000, seed=42)[1]
    frame = demo_frame(4000, seed=42)
    assert list(frame.columns) == FEATURES + [TARGET]
    flipped = (frame[TARGET] != clean).mean()
    assert 0.02 < flipped < 0.08
    with pytest.raises(ValueError):
        agrawal(10, seed=1, function=10)
