"""/predict and the request log, in process: a model call's rows are committed before its requests are answered."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from driftwatch.settings import Settings
from service import app as A


class Served:
    """A stand-in model snapshot: predicts ``x > 0``; instances are dicts with a number ``x``."""

    name, version = "m", "v1"
    package = SimpleNamespace(classes=[False, True])
    validator = SimpleNamespace(check=lambda body: body["instances"])

    def __init__(self):
        self.calls = []

    def predict(self, records):
        self.calls.append(len(records))
        preds = [r["x"] > 0 for r in records]
        return preds, [[0.0, 1.0] if p else [1.0, 0.0] for p in preds]


@pytest.fixture
def service(tmp_path):
    st = A.ServiceState(Settings(data_dir=tmp_path), load_package=None)
    st.store.create_all()
    st.slot.current = served = Served()
    st.requestlog.start()
    app = Starlette(routes=[Route("/predict", A.predict, methods=["POST"])])
    app.state.dw = st
    with TestClient(app) as client:
        yield SimpleNamespace(client=client, state=st, served=served)
    st.requestlog.close()
    st.store.dispose()


def test_answered_requests_are_in_the_store_with_their_ids(service):
    r = service.client.post("/predict", json={"instances": [{"x": 1.0}, {"x": -2.0}]})
    assert r.status_code == 200, r.text
    body = r.json()
    stored = service.state.store.read_predictions(0)
    assert [s["request_id"] for s in stored] == body["request_ids"]
    assert [s["prediction"] for s in stored] == body["predictions"] == [True, False]
    assert [s["features"] for s in stored] == [{"x": 1.0}, {"x": -2.0}]
    assert all(s["latency_ms"] >= 0 and s["model_version"] == "v1" for s in stored)


def test_rows_that_can_be_neither_committed_nor_spooled_get_a_503_and_no_200(service, monkeypatch):
    log = service.state.requestlog
    log._mark_down(RuntimeError("store down (test)"))  # rows go to the spool ...
    monkeypatch.setattr(log.spool, "append", lambda rows: (_ for _ in ()).throw(OSError(28, "No space left")))
    r = service.client.post("/predict", json={"instances": [{"x": 1.0}]})  # ... whose disk is full
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "request_log_unavailable" and "No space left" in r.json()["detail"]
    assert r.headers["retry-after"] == "5"
    assert service.state.store.read_predictions(0) == []
