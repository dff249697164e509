"""End to end, with real processes: service, monitor, Prometheus, Alertmanager.

Concept-drift traffic with labels → the alert fires in Prometheus →
Alertmanager delivers it to the monitor's webhook (and to people) → retraining
runs → a new version is promoted → responses switch to it with no failed
request → windowed performance recovers. A no-drift run fires no drift alert.
Intervals are scaled down by configuration (scrape 1 s, ``for:`` × 0.02).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

BINARIES = ("prometheus", "promtool", "prometheus-alertmanager")
DRIFT_ALERTS = {"DriftwatchDatasetDrift", "DriftwatchFeatureDrift", "DriftwatchPredictionDrift",
                "DriftwatchConceptDrift", "DriftwatchPerformanceBelowBaseline"}


def _require_binaries() -> None:
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed (apt-get install prometheus prometheus-alertmanager)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " — required in CI")
        pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PeopleWebhook:
    """Stands in for a Slack-compatible receiver: records what Alertmanager posts."""

    def __init__(self):
        self.received: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alertnames(self) -> set[str]:
        return {a["labels"]["alertname"] for msg in self.received for a in msg.get("alerts", [])}

    def close(self):
        self.server.shutdown()


def wait_for(pred, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def dw(env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "driftwatch.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    _require_binaries()
    data = tmp_path_factory.mktemp("e2e")
    people = PeopleWebhook()
    ports = {k: free_port() for k in ("service", "monitor", "prom", "am")}
    env = {**os.environ,
           "DRIFTWATCH_DATA_DIR": str(data),
           "DRIFTWATCH_SERVICE_PORT": str(ports["service"]),
           "DRIFTWATCH_MONITOR_PORT": str(ports["monitor"]),
           "DRIFTWATCH_PROMETHEUS_PORT": str(ports["prom"]),
           "DRIFTWATCH_ALERTMANAGER_PORT": str(ports["am"]),
           "DRIFTWATCH_PEOPLE_WEBHOOK_URL": people.url,
           "DRIFTWATCH_ALERT_TOKEN": "e2e-secret-token",
           "DRIFTWATCH_MONITOR_INTERVAL_SECONDS": "1",
           "DRIFTWATCH_WINDOW_SIZE": "400",
           "DRIFTWATCH_WINDOW_MIN_ROWS": "50",
           "DRIFTWATCH_CALIBRATION_RESAMPLES": "200",
           "DRIFTWATCH_RETRAIN_MIN_LABELED_ROWS": "1500",
           "DRIFTWATCH_RETRAIN_POLL_SECONDS": "2",
           "DRIFTWATCH_RETRAIN_COOLDOWN_SECONDS": "3600"}
    env.pop("BENTOML_HOME", None)
    r = dw(env, "train", "--demo", "--rows", "8000")
    assert r.returncode == 0, r.stderr
    log = open(data / "up.log", "w")
    up = subprocess.Popen([sys.executable, "-m", "driftwatch.cli", "up", "--scrape-interval", "1s",
                           "--evaluation-interval", "1s", "--for-scale", "0.02", "--group-wait", "1s",
                           "--group-interval", "2s", "--repeat-interval", "1h"],
                          env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    urls = {"service": f"http://127.0.0.1:{ports['service']}", "monitor": f"http://127.0.0.1:{ports['monitor']}",
            "prometheus": f"http://127.0.0.1:{ports['prom']}", "alertmanager": f"http://127.0.0.1:{ports['am']}"}

    def ready():
        if up.poll() is not None:
            raise AssertionError(f"driftwatch up exited: {(data / 'up.log').read_text()[-3000:]}")
        try:
            return all(httpx.get(u + p, timeout=1).status_code == 200 for u, p in
                       ((urls["service"], "/readyz"), (urls["monitor"], "/healthz"),
                        (urls["prometheus"], "/-/ready"), (urls["alertmanager"], "/-/ready")))
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, 120, "the stack to come up")
        yield {"env": env, "urls": urls, "people": people, "data": data}
    finally:
        up.send_signal(signal.SIGINT)  # Ctrl-C stops everything cleanly
        try:
            code = up.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            code = "timeout"
        people.close()
        log.close()
        still_open = [k for k, p in ports.items() if _listening(p)]
        assert code == 0 and not still_open, f"driftwatch up after Ctrl-C: exit {code}, still listening: {still_open}"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def firing(prom: str) -> dict[str, dict]:
    alerts = httpx.get(f"{prom}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {a["labels"]["alertname"]: a for a in alerts if a["state"] == "firing"}


def monitor_status(url: str) -> dict:
    r = httpx.get(f"{url}/status", timeout=10)
    return r.json() if r.status_code == 200 else {}


def test_no_drift_fires_no_drift_alert(stack):
    env, urls = stack["env"], stack["urls"]
    r = dw(env, "simulate", "--url", urls["service"], "--scenario", "none", "--requests", "1200", "--rate", "150",
           "--label-delay", "0.5", "--seed", "3")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "0 failed" in r.stdout
    # let the monitor evaluate and Prometheus evaluate the rules over several cycles
    wait_for(lambda: (monitor_status(urls["monitor"]).get("rows") or 0) >= 400, 90, "a full monitor window")
    time.sleep(8)
    assert not (set(firing(urls["prometheus"])) & DRIFT_ALERTS)


def test_concept_drift_alert_retrain_promote_recover(stack):
    env, urls, people = stack["env"], stack["urls"], stack["people"]
    before = httpx.get(f"{urls['service']}/model", timeout=5).json()["version"]
    t_onset = time.monotonic()
    sim = subprocess.Popen([sys.executable, "-m", "driftwatch.cli", "simulate", "--url", urls["service"],
                            "--scenario", "concept", "--requests", "6000", "--rate", "150", "--label-delay", "0.5",
                            "--seed", "11"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        alert = wait_for(lambda: firing(urls["prometheus"]).get("DriftwatchConceptDrift"), 120,
                         "DriftwatchConceptDrift to fire in Prometheus")
        t_alert = time.monotonic()
        during = monitor_status(urls["monitor"])
        acc_during = during["performance"]["accuracy"]
        assert during["concept_drift"] is True
        assert alert["labels"]["action"] == "retrain"
        assert alert["labels"]["severity"]
        assert alert["annotations"]["runbook_url"]
        # Alertmanager → monitor webhook: the alert is recorded, retraining runs and promotes
        from driftwatch.store import Store
        store = Store(f"sqlite:///{stack['data'] / 'driftwatch.db'}")
        wait_for(lambda: any(a["alertname"] == "DriftwatchConceptDrift" for a in store.alerts()), 60,
                 "the monitor's /alerts webhook to receive the alert")
        promoted = wait_for(lambda: (d := store.production()) and d.model_version != before and d, 180,
                            "a retrained version to be promoted")
        assert store.retrains(limit=1)[0]["outcome"] == "promoted"
        wait_for(lambda: httpx.get(f"{urls['service']}/model", timeout=5).json()["version"] == promoted.model_version,
                 30, "the service to serve the promoted version")
        t_serving = time.monotonic()
        wait_for(lambda: "DriftwatchConceptDrift" in people.alertnames(), 60, "Alertmanager to notify people")
        out, err = sim.communicate(timeout=240)
    finally:
        if sim.poll() is None:
            sim.kill()
    assert sim.returncode == 0, err[-2000:]
    assert " 0 failed" in out, out
    assert promoted.model_version in out and before in out  # responses switched versions, none failed
    # windowed performance recovers on the new model's traffic
    def recovered():
        st = monitor_status(urls["monitor"])
        ok = st.get("version") == promoted.model_version and (st.get("labeled_rows") or 0) >= 100
        return ok and st
    st = wait_for(recovered, 120, "the monitor to evaluate a labeled window of the new model")
    acc_after = st["performance"]["accuracy"]
    print(f"\ndrift onset → alert firing: {t_alert - t_onset:.1f} s; alert → new model serving: {t_serving - t_alert:.1f} s; "
          f"window accuracy during drift {acc_during:.3f}, after promotion {acc_after:.3f}")
    assert acc_after > acc_during + 0.1
    (stack["data"] / "e2e_timings.json").write_text(json.dumps(
        {"onset_to_alert_s": t_alert - t_onset, "alert_to_serving_s": t_serving - t_alert,
         "accuracy_during": acc_during, "accuracy_after": acc_after}))


def _dashboards():
    import importlib.util
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("grafana_build", root / "grafana" / "build.py")
    gb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gb)
    return gb


def test_every_dashboard_panel_query_returns_series(stack):
    """No Grafana here: run every panel's query against the Prometheus that holds this run's data."""
    prom, urls = stack["urls"]["prometheus"], stack["urls"]
    # one rejected request so the "rejections by reason" panel has a series
    httpx.post(f"{urls['service']}/predict", content=b"{not json", headers={"content-type": "application/json"})
    series = httpx.get(f"{prom}/api/v1/series", params={"match[]": "driftwatch_feature_drift_score"}).json()["data"]
    assert series, "the monitor's drift scores never reached Prometheus"
    model, feature = series[0]["model"], series[0]["feature"]
    gb = _dashboards()
    end = time.time()
    start = end - 3600
    empty = []
    n = 0
    time.sleep(3)  # let the rejected request be scraped
    for name in gb.DASHBOARDS:
        board = json.loads((gb.DASHBOARD_DIR / name).read_text())
        for title, expr in gb.iter_panel_queries(board, {"model": model, "feature": feature}, include_annotations=True):
            n += 1
            r = httpx.get(f"{prom}/api/v1/query_range", params={"query": expr, "start": start, "end": time.time(),
                                                                 "step": "2s"}, timeout=30).json()
            assert r["status"] == "success", f"{name} / {title}: {expr}: {r}"
            if not r["data"]["result"]:
                empty.append(f"{name} / {title}: {expr}")
    assert n > 10
    assert not empty, "panels whose queries return no series:\n" + "\n".join(empty)
