"""Cached-reference statistics: same scores as Evidently's stattests, fast resampled nulls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from models.datagen import CATEGORICAL, FEATURES, agrawal
from monitors.evidently_adapter import evidently_score
from monitors.stattests import CategoricalReference, NumericReference, fit_reference

KINDS = {c: "categorical" if c in CATEGORICAL else "numeric" for c in FEATURES}


@pytest.fixture(scope="module")
def frames():
    ref, _ = agrawal(3000, seed=5)
    cur, _ = agrawal(700, seed=6, covariate_shift=0.3)
    return ref, cur


@pytest.mark.parametrize("column", FEATURES)
def test_score_equals_evidently(frames, column):
    ref, cur = frames
    ours = fit_reference(ref[column], KINDS[column]).score(cur[column].to_numpy())
    assert ours == pytest.approx(evidently_score(ref[column], cur[column], KINDS[column]), rel=1e-12, abs=1e-15)


def test_missing_infinite_and_unseen_values_match_evidently():
    rng = np.random.default_rng(0)
    ref = pd.Series(np.r_[rng.normal(size=500), [np.nan, np.inf]])
    cur = pd.Series(np.r_[rng.normal(0.3, 1, 200), [np.nan, -np.inf, np.nan]])
    assert NumericReference.fit(ref).score(cur.to_numpy()) == pytest.approx(
        evidently_score(ref, cur, "numeric"), rel=1e-12)
    cref = pd.Series(rng.choice(["a", "b", "c"], 400).astype(object))
    ccur = pd.Series(list(rng.choice(["a", "b", "z"], 150)) + [None, np.nan], dtype=object)
    assert CategoricalReference.fit(cref).score(ccur.to_numpy()) == pytest.approx(
        evidently_score(cref, ccur, "categorical"), rel=1e-12)


def test_nothing_to_score_is_nan():
    assert np.isnan(NumericReference.fit([1.0, 2.0, 3.0]).score([np.nan, np.inf]))
    assert np.isnan(CategoricalReference.fit(["a"]).score([None]))


@pytest.mark.parametrize("column", ["salary", "age", "commission", "car"])
def test_resample_scores_are_window_against_rest(frames, column):
    ref, _ = frames
    rng = np.random.default_rng(1)
    windows = np.stack([rng.choice(len(ref), 300, replace=False) for _ in range(4)])
    stat = fit_reference(ref[column], KINDS[column])
    fast = stat.resample_scores(ref[column].to_numpy(), windows)
    for score, rows in zip(fast, windows):
        inside = np.zeros(len(ref), dtype=bool)
        inside[rows] = True
        win, rest = ref[column][inside], ref[column][~inside]
        if KINDS[column] == "numeric":
            expected = wasserstein_distance(win, rest) / stat.norm
        else:
            keys = sorted(set(ref[column]))
            expected = jensenshannon(win.value_counts().reindex(keys, fill_value=0),
                                     rest.value_counts().reindex(keys, fill_value=0))
        assert score == pytest.approx(expected, rel=1e-9)


def test_resample_scores_skip_missing_rows():
    rng = np.random.default_rng(2)
    col = rng.normal(size=1000)
    col[rng.random(1000) < 0.1] = np.nan
    stat = NumericReference.fit(col)
    windows = np.stack([rng.choice(1000, 200, replace=False) for _ in range(3)])
    fast = stat.resample_scores(col, windows)
    for score, rows in zip(fast, windows):
        inside = np.zeros(1000, dtype=bool)
        inside[rows] = True
        win, rest = col[inside], col[~inside]
        expected = wasserstein_distance(win[np.isfinite(win)], rest[np.isfinite(rest)]) / stat.norm
        assert score == pytest.approx(expected, rel=1e-9)
