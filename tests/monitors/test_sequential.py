"""CUSUM bank: seeded detection points, checkpoint/restore, batch-size invariance, quiet without change."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitors.sequential import CusumBank


def stream(seed: int, p0: float = 0.1, p1: float = 0.25, before: int = 5000, after: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.r_[rng.random(before) < p0, rng.random(after) < p1].astype(float)


def reference(seed: int = 0, p0: float = 0.1, n: int = 5000) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p0).astype(float)


def test_detects_seeded_change_at_known_index():
    det = CusumBank().fit(reference())
    det.update(stream(1))
    assert det.alarms_[0] == 5171  # 171 instances after the change
    assert det.n_seen_ == 8000


def test_batches_and_single_updates_agree():
    x = stream(2)
    whole = CusumBank().fit(reference())
    whole.update(x)
    single = CusumBank().fit(reference())
    for v in x[:6000]:
        single.update([v])
    single.update(x[6000:])
    assert whole.alarms_ == single.alarms_ and whole.n_alarms_ == single.n_alarms_
    assert whole.statistics_ == pytest.approx(single.statistics_)


def test_checkpoint_restores_exactly():
    x = stream(3)
    straight = CusumBank().fit(reference())
    straight.update(x)
    first = CusumBank().fit(reference())
    first.update(x[:5100])
    saved = json.loads(json.dumps(first.state()))
    resumed = CusumBank().load_state(saved)
    resumed.update(x[5100:])
    assert resumed.alarms_ == straight.alarms_
    assert resumed.n_seen_ == straight.n_seen_ and resumed.statistics_ == pytest.approx(straight.statistics_)


@pytest.mark.parametrize("p0", [0.02, 0.1, 0.3])
def test_quiet_without_change(p0):
    """ARL0 is 500,000 instances: 300,000 unchanged instances raise at most a rare alarm."""
    det = CusumBank().fit(reference(seed=5, p0=p0))
    det.update((np.random.default_rng(6).random(300_000) < p0).astype(float))
    assert det.n_alarms_ <= 2


def test_perfect_reference_model_still_works():
    det = CusumBank().fit(np.zeros(2000))
    assert not det.update(np.zeros(50_000))
    assert det.update((np.random.default_rng(0).random(500) < 0.2).astype(float))


def test_regression_errors_through_reference_ranks():
    rng = np.random.default_rng(4)
    det = CusumBank(task="regression").fit(np.abs(rng.normal(size=4000)))
    assert not det.update(np.abs(rng.normal(size=20_000)))
    assert det.update(np.abs(rng.normal(scale=1.5, size=2000)))
    restored = CusumBank().load_state(json.loads(json.dumps(det.state())))
    assert restored.task == "regression" and restored.n_alarms_ == det.n_alarms_


def test_rejects_tiny_reference_and_bad_state():
    with pytest.raises(ValueError):
        CusumBank().fit(np.zeros(3))
    with pytest.raises(ValueError):
        CusumBank().load_state({"version": 0})
