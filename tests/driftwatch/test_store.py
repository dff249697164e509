"""The store, on SQLite and on the real PostgreSQL (own schema per test)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from driftwatch.store import Store, utcnow
from driftwatch.store.engine import make_engine
from tests.helpers.service import free_port


def row(rid: str | None = None, **kw) -> dict:
    out = dict(request_id=rid or uuid.uuid4().hex, ts=utcnow(), model_name="m", model_version="v1",
               features={"x": 1.5, "c": "a", "n": None}, prediction=1, probabilities=[0.25, 0.75], latency_ms=2.0)
    out.update(kw)
    return out


def test_create_all_is_idempotent(store):
    store.create_all()
    store.create_all()
    assert store.count_predictions() == 0
    assert store.max_prediction_id() == 0


def test_insert_and_read_predictions(store):
    rows = [row(features={"x": i, "c": "é", "nested": {"a": [1, 2]}}, prediction=i % 2) for i in range(5)]
    assert store.insert_predictions(rows) == 5
    assert store.insert_predictions([]) == 0
    got = store.read_predictions(after_id=0)
    assert [r["request_id"] for r in got] == [r["request_id"] for r in rows], "ids follow insertion order"
    ids = [r["id"] for r in got]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert got[3]["features"] == {"x": 3, "c": "é", "nested": {"a": [1, 2]}}
    assert got[3]["prediction"] == 1 and got[3]["probabilities"] == [0.25, 0.75]
    assert (got[0]["model_name"], got[0]["model_version"], got[0]["latency_ms"]) == ("m", "v1", 2.0)
    assert store.read_predictions(after_id=ids[1], limit=2) == got[2:4]
    assert store.max_prediction_id() == ids[-1]
    assert store.request_ids() == {r["request_id"] for r in rows}


def test_insert_is_idempotent_on_request_id(store):
    """Shipping the spool again after a crash must not duplicate rows."""
    first = [row() for _ in range(3)]
    store.insert_predictions(first)
    again = [row(first[1]["request_id"], model_version="other"), row(), row(first[2]["request_id"])]
    store.insert_predictions(again)
    store.insert_predictions(first)
    assert store.count_predictions() == 4
    by_id = {r["request_id"]: r for r in store.read_predictions(0)}
    assert by_id[first[1]["request_id"]]["model_version"] == "v1", "the first write wins"


def test_duplicate_ids_within_one_batch(store):
    r = row()
    store.insert_predictions([r, dict(r), row()])
    assert store.count_predictions() == 2


def test_ts_is_utc(store):
    ts = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.timezone.utc)
    store.insert_predictions([row(ts=ts)])
    got = store.read_predictions(0)[0]["ts"]
    if got.tzinfo is None:  # SQLite returns naive datetimes: they must be the UTC wall clock
        got = got.replace(tzinfo=dt.timezone.utc)
    assert got == ts


def test_feedback_accepted_unknown_and_conflicts(store):
    a, b, c = row(), row(), row()
    store.insert_predictions([a, b, c])
    ra, rb = a["request_id"], b["request_id"]

    res = store.add_feedback([(ra, 1), ("nope", 0), (rb, "yes")])
    assert (res.accepted, res.unknown, res.conflicts) == (2, ["nope"], [])

    same = store.add_feedback([(ra, 1)])
    assert (same.accepted, same.conflicts) == (1, []), "repeating the same label is not a conflict"

    res = store.add_feedback([(ra, 0), (rb, "yes")])
    assert (res.accepted, res.conflicts) == (2, [ra])

    labels = store.latest_labels([ra, rb, c["request_id"], "nope"])
    assert set(labels) == {ra, rb}
    assert labels[ra][0] == 0, "the latest label wins"
    assert labels[rb][0] == "yes"
    assert labels[ra][1].tzinfo is not None
    assert store.feedback_stats() == {"labels": 5, "conflicts": 1}, "conflicting labels are kept and counted"


def test_feedback_conflict_inside_one_call_and_empty(store):
    a = row()
    store.insert_predictions([a])
    res = store.add_feedback([(a["request_id"], 1), (a["request_id"], 0)])
    assert (res.accepted, res.conflicts) == (2, [a["request_id"]])
    assert store.add_feedback([]).accepted == 0


def test_feedback_many_ids(store):
    """More ids than one IN (...) chunk."""
    rows = [row() for _ in range(1203)]
    store.insert_predictions(rows)
    labels = [(r["request_id"], i % 2) for i, r in enumerate(rows)] + [("unknown-id", 1)]
    res = store.add_feedback(labels)
    assert (res.accepted, res.unknown, res.conflicts) == (1203, ["unknown-id"], [])
    assert len(store.latest_labels([r["request_id"] for r in rows])) == 1203


def test_deployments(store):
    assert store.production() is None
    d1 = store.deploy("m", "v1", reason="first model", actor="train")
    assert (d1.model_name, d1.model_version, d1.previous_version, d1.reason, d1.actor) == \
        ("m", "v1", None, "first model", "train")
    assert d1.ts.tzinfo is not None
    store.deploy("other", "o1", reason="r", actor="a")
    d2 = store.deploy("m", "v2", reason="better", actor="promote")
    assert d2.previous_version == "v1"
    assert store.production("m").model_version == "v2"
    assert store.production("other").model_version == "o1"
    assert store.production().model_version == "v2", "no name: the latest deployment"
    assert [d.model_version for d in store.deployments("m")] == ["v2", "v1"]
    assert [d.model_version for d in store.deployments()] == ["v2", "o1", "v1"]
    assert store.production("missing") is None


def test_state(store):
    assert store.get_state("checkpoint") is None
    assert store.get_state("checkpoint", 7) == 7
    store.set_state("checkpoint", {"last_id": 10, "version": "v1"})
    store.set_state("other", [1, 2])
    store.set_state("checkpoint", {"last_id": 25, "version": "v1"})
    assert store.get_state("checkpoint") == {"last_id": 25, "version": "v1"}
    assert store.get_state("other") == [1, 2]


def test_monitor_run_commits_its_checkpoint_atomically(store):
    run = dict(ts=utcnow(), model_name="m", model_version="v1", first_prediction_id=1, last_prediction_id=9,
               rows=9, dataset_drift=False, drift_share=0.0, prediction_drift=False, concept_drift=None,
               duration_seconds=0.5, results={"features": {}})
    rid = store.add_monitor_run(run, state={"checkpoint": 9})
    assert store.get_state("checkpoint") == 9
    store.update_monitor_run(rid, report_path="/r.html")
    assert store.monitor_run(rid)["report_path"] == "/r.html"
    assert [r["id"] for r in store.monitor_runs()] == [rid]

    # the checkpoint cannot be written (not JSON): the run must not be recorded either
    with pytest.raises(Exception):
        store.add_monitor_run(run, state={"other": 1, "checkpoint": object()})
    assert store.get_state("checkpoint") == 9
    assert store.get_state("other") is None
    assert len(store.monitor_runs()) == 1


def test_alerts_and_retrains(store):
    aid = store.add_alert(dict(fingerprint="f", alertname="DataDrift", status="firing", severity="warning",
                               action="retrain", labels={"model": "m"}, annotations={}, starts_at="t"))
    assert store.alerts()[0]["id"] == aid
    rid = store.add_retrain(dict(started_at=utcnow(), trigger="alert", model_name="m", outcome="running"))
    store.update_retrain(rid, outcome="promoted", candidate_version="v2")
    assert store.retrains()[0]["outcome"] == "promoted"


def test_two_engines_write_concurrently(store_url):
    """Like two service processes on one database: every row lands once."""
    stores = [Store(store_url), Store(store_url)]
    stores[0].create_all()
    batches = [[row() for _ in range(20)] for _ in range(20)]
    errors = []

    def write(i):
        try:
            for b in batches[i::2]:
                stores[i].insert_predictions(b)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert stores[0].request_ids() == {r["request_id"] for b in batches for r in b}
    for s in stores:
        s.dispose()


def test_sqlite_engine_is_durable(tmp_path):
    """WAL journal and synchronous=FULL on every connection."""
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}", timeout=3.0)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 3000
    engine.dispose()


def test_postgres_outage_fails_fast_instead_of_hanging():
    """Nothing listens on the port: the store raises (the request log then spools)."""
    store = Store(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test", timeout=1.0)
    with pytest.raises(OperationalError):
        store.insert_predictions([row()])
    store.dispose()
