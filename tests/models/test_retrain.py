"""Retraining on recent labeled traffic: promoted when better, rejected when not, skipped without labels."""

from __future__ import annotations

import time
import uuid

import pytest

from driftwatch.store import Store, utcnow
from models import registry
from models.datagen import TARGET, agrawal, demo_frame
from models.retrain import RetrainPolicy, run
from models.train import train_frame
from models.trigger import RetrainTrigger


@pytest.fixture(scope="module")
def package():
    trained = train_frame(demo_frame(4000, seed=5), TARGET, estimator="hgb", trained_from="test", progress=False)
    return registry.save(f"retrain-test-{uuid.uuid4().hex[:6]}", trained)


@pytest.fixture
def store(tmp_path, package):
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.create_all()
    s.deploy(package.name, package.version, reason="test", actor="test")
    return s


def log_traffic(store: Store, package, n: int, seed: int, **drift) -> None:
    """Predictions of the production model for ``n`` rows, with their true labels as feedback."""
    X, y = agrawal(n, seed=seed, label_noise=0.05, **drift)
    X = package.schema.coerce(X)
    pred = package.estimator.predict(X)
    rows, labels = [], []
    for i, rec in enumerate(X.to_dict(orient="records")):
        rid = uuid.uuid4().hex
        rows.append(dict(request_id=rid, ts=utcnow(), model_name=package.name, model_version=package.version,
                         features=rec, prediction=int(pred[i]), probabilities=None, latency_ms=1.0))
        labels.append((rid, int(y.iloc[i])))
    store.insert_predictions(rows)
    store.add_feedback(labels)


def test_concept_drift_candidate_is_promoted(store, package):
    log_traffic(store, package, 1000, seed=1)                 # before the change
    log_traffic(store, package, 2500, seed=2, function=2)     # after: another approval rule
    result = run(store, package, RetrainPolicy(min_labeled_rows=1000), trigger="test")
    assert result.outcome == "promoted", result.reason
    assert 900 <= result.data["change_point_dropped_rows"] <= 1100  # the pre-change rows are left out
    assert result.data["concept_changed"] is True
    m = result.metrics
    assert m["candidate"]["recent"]["accuracy"] > m["production"]["recent"]["accuracy"] + 0.2
    prod = store.production()
    assert prod.model_version == result.candidate_version and prod.previous_version == package.version
    row = store.retrains(limit=1)[0]
    assert row["outcome"] == "promoted" and row["candidate_version"] == result.candidate_version
    assert row["error_analysis"]["production"] and row["error_analysis"]["candidate"]
    # the candidate is a full package: schema, reference of unseen rows, baseline
    cand = registry.load(package.name, result.candidate_version)
    assert cand.schema == package.schema and len(cand.reference) >= 500
    assert cand.baseline["accuracy"] > 0.8


def test_no_drift_candidate_is_rejected(store, package):
    log_traffic(store, package, 1500, seed=3)
    result = run(store, package, RetrainPolicy(min_labeled_rows=1000, margin=0.01), trigger="test")
    assert result.outcome == "rejected", result.reason
    assert "change_point_dropped_rows" not in result.data
    assert store.production().model_version == package.version
    assert store.retrains(limit=1)[0]["outcome"] == "rejected"


def test_too_few_labels_is_skipped(store, package):
    log_traffic(store, package, 100, seed=4)
    result = run(store, package, RetrainPolicy(min_labeled_rows=500), trigger="test")
    assert result.outcome == "skipped" and "need 500" in result.reason
    assert store.production().model_version == package.version


def test_trigger_runs_once_then_cools_down(store, package):
    log_traffic(store, package, 100, seed=6)
    trig = RetrainTrigger(store, lambda: package, RetrainPolicy(min_labeled_rows=50), cooldown_seconds=3600,
                          wait_seconds=0, poll_seconds=0.1)
    first = trig({"alertname": "DriftwatchConceptDrift"})
    assert first["retrain"] == "started"
    second = trig({"alertname": "DriftwatchConceptDrift"})
    assert second["retrain"] in ("already running", "cooldown")
    trig.join(60)
    third = trig({"alertname": "DriftwatchConceptDrift"})
    assert third["retrain"] == "cooldown" and third["seconds_left"] > 3000
    assert len(store.retrains()) == 1


def test_trigger_waits_for_labels_of_the_new_concept(store, package):
    trig = RetrainTrigger(store, lambda: package, RetrainPolicy(min_labeled_rows=300), cooldown_seconds=0,
                          wait_seconds=30, poll_seconds=0.2)
    assert trig({"alertname": "x"})["retrain"] == "started"
    time.sleep(0.5)
    assert trig.busy() and not store.retrains()  # waiting, nothing recorded yet
    log_traffic(store, package, 400, seed=7)
    trig.join(60)
    assert store.retrains(limit=1)[0]["outcome"] in ("promoted", "rejected")
