"""The monitor's HTTP API: /status, /metrics, /reports, /alerts, /healthz; and the real ``driftwatch monitor``."""

from __future__ import annotations

import os
import signal
import subprocess
import warnings

import httpx
import pytest

from monitors.app import build_monitor_app
from monitors.exporter import MONITOR_METRIC_NAMES
from monitors.runner import Monitor
from tests.helpers.prom import label_values, names, samples, value
from tests.helpers.service import DRIFTWATCH, REPO, child_env, free_port, wait_until
from tests.monitors.monitor_fixtures import log_predictions

with warnings.catch_warnings():  # Starlette 1.x prefers "httpx2" for its test client; httpx works the same here
    warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient")
    from starlette.testclient import TestClient

# DESIGN.md, "Metric names", monitor list
DESIGN_MONITOR_METRICS = {
    "driftwatch_feature_drift_score", "driftwatch_feature_drift_threshold", "driftwatch_feature_drifted",
    "driftwatch_dataset_drift_share", "driftwatch_dataset_drift", "driftwatch_prediction_drift_score",
    "driftwatch_prediction_drifted", "driftwatch_missing_share", "driftwatch_out_of_range_share",
    "driftwatch_model_performance", "driftwatch_model_performance_baseline", "driftwatch_estimated_performance",
    "driftwatch_concept_drift", "driftwatch_labeled_share", "driftwatch_window_rows",
    "driftwatch_monitor_last_run_timestamp_seconds", "driftwatch_monitor_run_duration_seconds",
    "driftwatch_retrains_total", "driftwatch_model_info",
}
EXTRA = {"driftwatch_label_delay_seconds", "driftwatch_unseen_category_share", "driftwatch_prediction_drift_threshold"}
AUTH = {"Authorization": "Bearer s3cret"}


class FakeTrigger:
    def __init__(self):
        self.calls = []

    def __call__(self, labels):
        self.calls.append(labels)
        return {"retrain": "started", "trigger": f"alert {labels.get('alertname')}"}


@pytest.fixture
def setup(settings, store, packages, load_package):
    v1 = packages[0]
    store.deploy(v1.name, v1.version, reason="test", actor="test")
    mon = Monitor(settings, store, load_package)
    trigger = FakeTrigger()
    app = build_monitor_app(settings, store, mon, trigger=trigger, run_loop=False)
    with TestClient(app) as client:
        yield client, mon, store, trigger, packages


def fill_window(store, package, mon, n=250, seed=1):
    rows, y = log_predictions(store, package, n, seed=seed)
    store.add_feedback([(r["request_id"], v) for r, v in zip(rows[::2], y[::2])])
    assert mon.step() is not None


def test_before_the_first_window(setup):
    client, mon, store, _, packages = setup
    mon.step()
    r = client.get("/status")
    assert r.status_code == 404 and r.json()["error"] == "no_window" and "50 rows" in r.json()["detail"]
    text = client.get("/metrics").text
    v1 = packages[0]
    assert value(text, "driftwatch_model_info", model=v1.name, version=v1.version) == 1
    assert value(text, "driftwatch_model_performance_baseline", model=v1.name, metric="accuracy") == \
        pytest.approx(v1.baseline["accuracy"])
    assert label_values(text, "driftwatch_feature_drift_threshold", "feature") == set(v1.schema.names)
    assert "driftwatch_monitor_last_run_timestamp_seconds" in names(text)   # the start: a stuck monitor goes stale
    assert "driftwatch_dataset_drift" not in names(text)
    assert client.get("/reports/latest").status_code == 404
    assert client.get("/healthz").json()["status"] == "ok"


def test_status_and_every_monitor_metric(setup):
    client, mon, store, _, packages = setup
    store.add_retrain({"started_at": __import__("driftwatch.store").store.utcnow(), "trigger": "test",
                       "model_name": packages[0].name, "outcome": "promoted"})
    fill_window(store, packages[0], mon)
    st = client.get("/status").json()
    assert st["run_id"] == mon.snapshot.run_id and st["rows"] == 200
    f = st["features"][0]
    assert {"feature", "method", "score", "threshold", "drifted"} <= set(f)
    assert {"drift_share", "dataset_drift", "prediction_drift", "quality", "performance", "estimated_performance",
            "concept_drift", "ranking", "window"} <= set(st)
    assert {"first_prediction_id", "last_prediction_id", "first_ts", "last_ts"} <= set(st["window"])
    text = client.get("/metrics").text
    exported = names(text)
    assert DESIGN_MONITOR_METRICS | EXTRA <= exported, DESIGN_MONITOR_METRICS - exported
    assert set(MONITOR_METRIC_NAMES) <= exported
    assert value(text, "driftwatch_retrains_total", model=packages[0].name, outcome="promoted") == 1
    assert value(text, "driftwatch_window_rows", model=packages[0].name) == 200
    assert 0.4 < value(text, "driftwatch_labeled_share", model=packages[0].name) < 0.6
    for name, labels, _ in samples(text):       # labels are bounded: never ids or values
        assert set(labels) <= {"model", "version", "feature", "method", "metric", "outcome"}, (name, labels)


def test_report_html(setup):
    client, mon, store, _, packages = setup
    fill_window(store, packages[0], mon)
    r = client.get("/reports/latest")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text[:200].lower() and "Data drift" in r.text
    run_id = mon.snapshot.run_id
    assert client.get(f"/reports/{run_id}").text == r.text          # cached file
    assert store.monitor_run(run_id)["report_path"].endswith(f"run-{run_id}.html")
    assert client.get("/reports/999").status_code == 404
    assert client.get("/reports/abc").status_code == 400


def alert(status="firing", action="retrain", starts="2026-01-01T00:00:00Z", fp="abc123"):
    return {"version": "4", "status": status, "receiver": "retrain", "groupKey": "{}:{}", "alerts": [{
        "status": status, "labels": {"alertname": "DriftwatchConceptDrift", "model": "m", "severity": "critical",
                                     **({"action": action} if action else {})},
        "annotations": {"summary": "concept drift"}, "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph", "fingerprint": fp}]}


def test_alerts_auth_record_trigger_dedupe(setup):
    client, _, store, trigger, _ = setup
    assert client.post("/alerts", json=alert()).status_code == 401
    assert client.post("/alerts", json=alert(), headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/alerts", content=b"{", headers=AUTH).status_code == 400
    r = client.post("/alerts", json=alert(), headers=AUTH)
    assert r.status_code == 200
    body = r.json()["alerts"][0]
    assert body["retrain"]["retrain"] == "started" and body["handled"] == "retrain: started"
    assert trigger.calls == [alert()["alerts"][0]["labels"]]
    assert client.post("/alerts", json=alert(), headers=AUTH).json()["alerts"][0]["handled"] == "duplicate"
    client.post("/alerts", json=alert(status="resolved"), headers=AUTH)
    client.post("/alerts", json=alert(action=None, fp="other"), headers=AUTH)
    assert len(trigger.calls) == 1
    rows = store.alerts()
    assert [(a["status"], a["action"], a["handled"]) for a in rows] == [
        ("firing", None, "recorded"), ("resolved", "retrain", "recorded"), ("firing", "retrain", "retrain: started")]
    assert rows[-1]["labels"]["severity"] == "critical" and rows[-1]["starts_at"] == "2026-01-01T00:00:00Z"


def test_promotion_switches_the_exported_model(setup):
    client, mon, store, _, packages = setup
    v1, v2 = packages
    fill_window(store, v1, mon)
    store.deploy(v2.name, v2.version, reason="test", actor="test")
    mon.step()
    text = client.get("/metrics").text
    assert label_values(text, "driftwatch_model_info", "version") == {v2.version}
    assert client.get("/status").status_code == 404          # no window of v2 yet
    fill_window(store, v2, mon, seed=2)
    assert client.get("/status").json()["version"] == v2.version


@pytest.mark.slow
def test_real_monitor_process(tmp_path, packages, bentoml_home):
    from driftwatch.store import Store
    v1 = packages[0]
    url = f"sqlite:///{tmp_path / 'driftwatch.db'}"
    store = Store(url)
    store.create_all()
    store.deploy(v1.name, v1.version, reason="test", actor="test")
    log_predictions(store, v1, 250, seed=3)
    port = free_port()
    env = child_env(tmp_path, bentoml_home, url, {"DRIFTWATCH_WINDOW_MIN_ROWS": 50, "DRIFTWATCH_ALERT_TOKEN": "t"})
    proc = subprocess.Popen([DRIFTWATCH, "monitor", "--port", str(port), "--interval", "0.5", "--window-size", "200"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def scraped():
            try:
                text = httpx.get(f"{base}/metrics", timeout=2).text
            except httpx.HTTPError:
                return None
            return text if "driftwatch_window_rows{" in text else None
        text = wait_until(scraped, 120, "the monitor's first window on /metrics", interval=0.5)
        assert DESIGN_MONITOR_METRICS - {"driftwatch_model_performance", "driftwatch_retrains_total"} <= names(text)
        assert value(text, "driftwatch_window_rows", model=v1.name) == 200
        assert httpx.get(f"{base}/status").json()["rows"] == 200
        assert httpx.post(f"{base}/alerts", json=alert(action=None)).status_code == 401
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert store.monitor_runs(limit=1)[0]["rows"] == 200
    out = tmp_path / "out" / "window.html"
    report = subprocess.run([DRIFTWATCH, "report", "--output", str(out)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    assert report.stdout.strip() == str(out) and "<html" in out.read_text()[:200].lower()
    missing = subprocess.run([DRIFTWATCH, "report", "--run-id", "999"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "no window with run id 999" in missing.stderr
