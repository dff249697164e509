"""The monitor loop on a real small model package and a real SQLite store."""

from __future__ import annotations

import json

import numpy as np

from monitors.runner import CHECKPOINT_KEY, Monitor, calibration_path
from tests.monitors.monitor_fixtures import log_predictions


def deploy(store, package):
    store.deploy(package.name, package.version, reason="test", actor="test")


def label(store, rows, y, share=1.0, seed=0):
    keep = np.random.default_rng(seed).random(len(rows)) < share
    store.add_feedback([(r["request_id"], v) for r, v, k in zip(rows, y, keep) if k])
    return int(keep.sum())


def test_window_is_evaluated_recorded_and_checkpointed(settings, store, packages, load_package):
    v1 = packages[0]
    deploy(store, v1)
    mon = Monitor(settings, store, load_package)
    assert mon.step() is None                       # model loaded, no rows yet
    assert mon.snapshot.model == v1.name and mon.snapshot.results is None
    assert set(mon.snapshot.thresholds) == set(v1.schema.names) | {"prediction"}

    rows, y = log_predictions(store, v1, 30, seed=1)
    assert mon.step() is None                       # 30 < window_min_rows 50
    more, y2 = log_predictions(store, v1, 220, seed=2)
    label(store, rows + more, y + y2, share=0.5)
    run_id = mon.step()
    assert run_id is not None
    run = store.monitor_run(run_id)
    r = run["results"]
    assert run["rows"] == 200 and r["window"]["new_rows"] == 250
    assert (run["first_prediction_id"], run["last_prediction_id"]) == (51, 250)
    assert {f["feature"] for f in r["features"]} == set(v1.schema.names)
    assert run["dataset_drift"] is False and run["concept_drift"] is False
    assert 0.3 < r["labeled_share"] < 0.7
    assert abs(r["performance"]["accuracy"] - v1.baseline["accuracy"]) < 0.15, (r["performance"], v1.baseline)
    assert r["labels"]["delay_seconds_median"] >= 0
    assert r["estimated_performance"]["accuracy"] > 0.5
    state = store.get_state(CHECKPOINT_KEY)
    assert state["source"]["frontier"] == 250 and state["source"]["window_first_id"] == 51
    assert calibration_path(settings, v1.name, v1.version, 200).exists()
    assert mon.step() is None                       # nothing new


def test_labels_feed_the_detector_exactly_once_across_restarts(settings, store, packages, load_package):
    v1 = packages[0]
    deploy(store, v1)
    mon = Monitor(settings, store, load_package)
    rows, y = log_predictions(store, v1, 200, seed=3)
    n1 = label(store, rows[:120], y[:120])
    mon.step()
    assert mon.snapshot.results["labels"]["fed_to_detector"] == n1
    # later labels for rows already in the window, plus new rows
    n2 = label(store, rows[120:], y[120:])
    more, ym = log_predictions(store, v1, 60, seed=4)
    mon.step()
    assert mon.snapshot.results["labels"]["fed_to_detector"] == n2
    detector = json.dumps(mon.evaluator.state(), sort_keys=True)

    again = Monitor(settings, store, load_package)  # a restart
    again.start()
    assert json.dumps(again.evaluator.state(), sort_keys=True) == detector
    assert again.snapshot.run_id == mon.snapshot.run_id     # the latest window is served at once
    label(store, more, ym)
    log_predictions(store, v1, 60, seed=5)
    again.step()
    assert again.snapshot.results["labels"]["fed_to_detector"] == len(more)   # old labels not fed twice


def test_restart_totals_match_a_run_without_restart(settings, store, packages, load_package, tmp_path):
    """The same stream, replayed into two fresh stores: restarts between steps change nothing recorded."""
    from driftwatch.settings import Settings
    from driftwatch.store import Store

    v1 = packages[0]
    batches = [[{k: v for k, v in r.items() if k != "id"} for r in log_predictions(store, v1, n, seed=10 + i)[0]]
               for i, n in enumerate([120, 90, 40, 80, 200, 30, 70])]

    def replay(name, restarts):
        sett = Settings(**{**settings.model_dump(), "data_dir": tmp_path / name, "database_url": ""})
        st = Store(sett.database_url)
        st.create_all()
        deploy(st, v1)
        mon, runs = Monitor(sett, st, load_package), []
        for i, batch in enumerate(batches):
            st.insert_predictions(batch)
            if rid := mon.step():
                run = st.monitor_run(rid)
                runs.append((run["first_prediction_id"], run["last_prediction_id"], run["rows"],
                             run["results"]["window"]["new_rows"]))
            if i in restarts:
                mon = Monitor(sett, st, load_package)
        return runs

    plain = replay("plain", set())
    assert replay("restarted", {0, 2, 3, 5}) == plain
    assert sum(r[3] for r in plain) == sum(map(len, batches))


def test_promotion_switches_the_evaluator_and_the_window(settings, store, packages, load_package):
    v1, v2 = packages
    deploy(store, v1)
    mon = Monitor(settings, store, load_package)
    log_predictions(store, v1, 250, seed=6)
    assert mon.step() is not None
    deploy(store, v2)
    log_predictions(store, v1, 30, seed=7)           # the service still answers with v1 for a moment
    log_predictions(store, v2, 220, seed=8)
    run_id = mon.step()
    assert mon.package.version == v2.version and mon.snapshot.version == v2.version
    run = store.monitor_run(run_id)
    assert run["model_version"] == v2.version and run["rows"] == 200 and run["first_prediction_id"] > 280
    assert calibration_path(settings, v2.name, v2.version, 200).exists()


def test_calibration_is_cached_per_version_and_window(settings, store, packages, load_package):
    v1 = packages[0]
    deploy(store, v1)
    Monitor(settings, store, load_package).start()
    path = calibration_path(settings, v1.name, v1.version, 200)
    stamp = path.stat().st_mtime_ns
    mon = Monitor(settings, store, load_package).start()
    assert mon.evaluator.drift_.calibration_reused_ and path.stat().st_mtime_ns == stamp


def test_time_window(settings, store, packages, load_package):
    from driftwatch.settings import Settings
    v1 = packages[0]
    deploy(store, v1)
    s = Settings(**{**settings.model_dump(), "window_seconds": 3600.0, "window_min_rows": 50})
    mon = Monitor(s, store, load_package)
    log_predictions(store, v1, 80, seed=9)
    run_id = mon.step()
    assert run_id is not None and store.monitor_run(run_id)["rows"] == 80
    assert mon.snapshot.results["window"]["kind"] == "time"
