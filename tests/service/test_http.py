"""The HTTP API of a real ``driftwatch serve`` (a real ``bentoml serve``), SQLite store.

One service for the module, with small limits so that "too many instances"
and "body too large" are cheap to provoke.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import joblib
import pytest

from driftwatch.schema import FeatureSchema
from driftwatch.store import Store
from tests.helpers import prom
from tests.helpers.load import demo_instances
from tests.helpers.service import new_service

pytestmark = pytest.mark.slow

MAX_INSTANCES = 5
MAX_BODY = 4096
ACCEPTED: list[str] = []  # every request id this module got a 200 for


@pytest.fixture(scope="module")
def svc(demo_model, tmp_path_factory):
    s = new_service(demo_model, tmp_path_factory.mktemp("http"),
                    env={"DRIFTWATCH_MAX_INSTANCES": MAX_INSTANCES, "DRIFTWATCH_MAX_BODY_BYTES": MAX_BODY})
    s.start()
    yield s
    s.kill9()


@pytest.fixture(scope="module")
def client(svc):
    with svc.client() as c:
        yield c


@pytest.fixture(scope="module")
def db(svc):
    s = Store(svc.database_url)
    yield s
    s.dispose()


def instances(n: int, offset: int = 0) -> list[dict]:
    pool = demo_instances()
    return [dict(pool[(offset + i) % len(pool)]) for i in range(n)]


def predict(client, batch: list[dict]) -> dict:
    r = client.post("/predict", json={"instances": batch})
    assert r.status_code == 200, r.text
    body = r.json()
    ACCEPTED.extend(body["request_ids"])
    return body


def test_predict_one(client, db, demo_model):
    inst = instances(1)[0]
    body = predict(client, [inst])
    assert body["model"] == {"name": demo_model.name, "version": demo_model.version}
    assert len(body["predictions"]) == len(body["request_ids"]) == len(body["probabilities"]) == 1
    assert body["classes"] == [0, 1] and body["predictions"][0] in (0, 1)
    proba = body["probabilities"][0]
    assert len(proba) == 2 and abs(sum(proba) - 1) < 1e-5
    assert body["predictions"][0] == [0, 1][proba.index(max(proba))]
    rid = body["request_ids"][0]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)

    row = next(r for r in db.read_predictions(0) if r["request_id"] == rid)  # committed before the 200
    assert (row["model_name"], row["model_version"]) == (demo_model.name, demo_model.version)
    assert row["features"] == inst
    assert row["prediction"] == body["predictions"][0]
    assert row["probabilities"] == proba
    assert row["latency_ms"] > 0


def test_predict_many_matches_the_model(client, db, demo_model):
    batch = instances(MAX_INSTANCES, offset=7)
    body = predict(client, batch)
    ids = body["request_ids"]
    assert len(ids) == len(set(ids)) == MAX_INSTANCES, "one fresh id per instance"
    meta = json.loads((demo_model.path / "package.json").read_text())
    est = joblib.load(demo_model.path / "estimator.joblib")
    X = FeatureSchema.model_validate(meta["schema"]).frame(batch)
    assert body["predictions"] == est.predict(X).tolist()
    assert all(abs(a - b) < 1e-5 for got, exp in zip(body["probabilities"], est.predict_proba(X).tolist())
               for a, b in zip(got, exp))
    rows = {r["request_id"]: r for r in db.read_predictions(0)}
    assert [rows[i]["features"] for i in ids] == batch


def test_request_ids_are_distinct_under_concurrency(svc):
    def one(i):
        with svc.client() as c:
            return predict(c, instances(1 + i % 3, offset=i))["request_ids"]

    with ThreadPoolExecutor(12) as pool:
        ids = [rid for batch in pool.map(one, range(48)) for rid in batch]
    assert len(ids) == len(set(ids)) == sum(1 + i % 3 for i in range(48))


def test_feedback_accepted_unknown_and_conflicting(client, db, svc):
    ids = predict(client, instances(3, offset=20))["request_ids"]
    conflicts_before = prom.value(svc.metrics(), "driftwatch_feedback_conflicts_total")

    r = client.post("/feedback", json={"labels": [{"request_id": ids[0], "label": 1},
                                                  {"request_id": ids[1], "label": 0},
                                                  {"request_id": "f" * 32, "label": 1}]})
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 2, "unknown": ["f" * 32], "conflicts": []}

    r = client.post("/feedback", json={"labels": [{"request_id": ids[0], "label": 0},
                                                  {"request_id": ids[1], "label": 0}]})
    assert r.status_code == 200
    assert r.json() == {"accepted": 2, "unknown": [], "conflicts": [ids[0]]}, "the disagreeing label is flagged"

    assert prom.value(svc.metrics(), "driftwatch_feedback_conflicts_total") == conflicts_before + 1
    labels = db.latest_labels(ids)
    assert labels[ids[0]][0] == 0 and labels[ids[1]][0] == 0 and ids[2] not in labels
    stats = db.feedback_stats()
    assert stats["labels"] >= 4 and stats["conflicts"] >= 1, "both labels are kept"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_model_description(client, demo_model, method):
    r = client.request(method, "/model")
    assert r.status_code == 200
    m = r.json()
    assert (m["name"], m["version"], m["task"], m["classes"]) == (demo_model.name, demo_model.version,
                                                                  "classification", [0, 1])
    features = {f["name"]: f for f in m["features"]}
    assert len(features) == 9
    assert features["age"]["kind"] == "numeric" and features["age"]["min"] == 20.0 and features["age"]["max"] == 80.0
    assert features["car"]["kind"] == "categorical" and "make_1" in features["car"]["categories"]
    assert set(m["baseline"]) == {"accuracy", "f1", "roc_auc"}
    assert m["trained_at"] and "demo" in m["trained_from"] and m["reference_rows"] == 1000


def test_health_endpoints_and_openapi(client):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    docs = client.get("/docs.json")
    assert docs.status_code == 200
    paths = docs.json()["paths"]
    assert "post" in paths["/predict"] and "post" in paths["/feedback"] and "get" in paths["/model"]
    assert client.get("/").status_code == 200  # the OpenAPI (Swagger) page


def test_service_metrics(client, svc, demo_model):
    predict(client, instances(2, offset=40))
    assert client.post("/predict", json={"instances": []}).status_code == 422
    text = svc.metrics()
    names = prom.names(text)
    for name in ("driftwatch_predictions_total", "driftwatch_requests_rejected_total",
                 "driftwatch_request_log_rows_total", "driftwatch_request_log_spooled_rows"):
        assert name in names, name
    assert any(n.startswith("bentoml_service_") for n in names)
    assert prom.label_values(text, "driftwatch_predictions_total", "predicted") <= {"0", "1"}
    assert prom.value(text, "driftwatch_predictions_total", model=demo_model.name,
                      version=demo_model.version) == len(ACCEPTED)
    assert prom.value(text, "driftwatch_request_log_rows_total") == len(ACCEPTED)
    assert prom.value(text, "driftwatch_request_log_spooled_rows") == 0


# -- bad input -----------------------------------------------------------------
def _inst(**changes) -> dict:
    d = instances(1, offset=3)[0]
    for k, v in changes.items():
        if v is _DROP:
            d.pop(k)
        else:
            d[k] = v
    return d


_DROP = object()
JSON = {"content-type": "application/json"}


def _raw(obj) -> bytes:
    return json.dumps(obj).encode()


def _bad_cases():
    valid = {"instances": [_inst()]}
    too_big = {"instances": [_inst(car="x" * MAX_BODY)]}
    return [
        # id, request kwargs, status, reason, locs that must be named
        ("malformed_json", dict(content=b'{"instances": [', headers=JSON), 400, "malformed_json", {"body"}),
        ("not_json_at_all", dict(content=b"salary=1", headers=JSON), 400, "malformed_json", {"body"}),
        ("wrong_content_type", dict(content=_raw(valid), headers={"content-type": "text/plain"}), 415,
         "content_type", {"headers.content-type"}),
        ("no_content_type", dict(content=_raw(valid), headers={"content-type": ""}), 415, "content_type",
         {"headers.content-type"}),
        ("form_post", dict(data={"instances": "x"}), 415, "content_type", {"headers.content-type"}),
        ("not_an_object", dict(json=[_inst()]), 422, "bad_shape", {"body"}),
        ("missing_feature", dict(json={"instances": [_inst(age=_DROP)]}), 422, "missing_feature",
         {"instances[0].age"}),
        ("unknown_feature", dict(json={"instances": [_inst(colour="red")]}), 422, "unknown_feature",
         {"instances[0].colour"}),
        ("wrong_type", dict(json={"instances": [_inst(age="old", car=4)]}), 422, "wrong_type",
         {"instances[0].age", "instances[0].car"}),
        ("bool_for_number", dict(json={"instances": [_inst(salary=True)]}), 422, "wrong_type",
         {"instances[0].salary"}),
        ("nan_token", dict(content=_raw({"instances": [_inst()]}).replace(b'"age": ', b'"age": NaN, "x": '),
                           headers=JSON), 400, "not_finite", {"body"}),
        ("infinity_token", dict(content=_raw({"instances": [_inst(age=_DROP)]})[:-3] + b', "age": -Infinity}]}',
                                headers=JSON), 400, "not_finite", {"body"}),
        ("overflow_to_inf", dict(content=_raw({"instances": [_inst(age=1)]}).replace(b'"age": 1', b'"age": 1e999'),
                                 headers=JSON), 422, "not_finite", {"instances[0].age"}),
        ("integer_beyond_float", dict(content=_raw({"instances": [_inst(age=1)]}).replace(
            b'"age": 1', b'"age": 1' + b"0" * 400), headers=JSON), 422, "not_finite", {"instances[0].age"}),
        ("null_not_allowed", dict(json={"instances": [_inst(salary=None, elevel=None)]}), 422, "null_not_allowed",
         {"instances[0].salary", "instances[0].elevel"}),
        ("empty_instances", dict(json={"instances": []}), 422, "empty_batch", {"instances"}),
        ("too_many_instances", dict(json={"instances": [_inst()] * (MAX_INSTANCES + 1)}), 422,
         "too_many_instances", {"instances"}),
        ("body_too_large", dict(json=too_big), 413, "body_too_large", {"body"}),
        ("body_too_large_chunked", dict(content=iter([_raw(too_big)[:2000], _raw(too_big)[2000:]]), headers=JSON),
         413, "body_too_large", {"body"}),
        ("nested_too_deep", dict(content=b"[" * 1500 + b"]" * 1500, headers=JSON), 400, "malformed_json", {"body"}),
        ("every_problem_named", dict(json={"instances": [_inst(), _inst(age=_DROP), _inst(car=1.5, loan="x")]}),
         422, "missing_feature", {"instances[1].age", "instances[2].car", "instances[2].loan"}),
    ]


@pytest.mark.parametrize("case", _bad_cases(), ids=lambda c: c[0])
def test_bad_input_is_a_4xx_naming_each_problem_counted_and_not_logged(client, svc, db, case):
    _, kwargs, status, reason, locs = case
    rows_before = db.count_predictions()
    rejected_before = prom.value(svc.metrics(), "driftwatch_requests_rejected_total", reason=reason)

    r = client.post("/predict", **kwargs)

    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == reason
    assert body["detail"]
    named = {p["loc"] for p in body["problems"]}
    assert locs <= named, f"problems {body['problems']}"
    assert all(p["reason"] and p["message"] for p in body["problems"])
    assert prom.value(svc.metrics(), "driftwatch_requests_rejected_total", reason=reason) == rejected_before + 1
    assert db.count_predictions() == rows_before, "nothing of a rejected request is logged"


@pytest.mark.parametrize("kwargs, status, reason", [
    (dict(json={"labels": [{"request_id": "", "label": None}]}), 422, "bad_label"),
    (dict(json={"labels": []}), 422, "empty_batch"),
    (dict(json={"label": 1}), 422, "bad_shape"),
    (dict(content=b'{"labels": [', headers=JSON), 400, "malformed_json"),
    (dict(content=b'{"labels": []}', headers={"content-type": "text/plain"}), 415, "content_type"),
], ids=["bad_label", "empty", "bad_shape", "malformed", "content_type"])
def test_bad_feedback_is_a_4xx_and_not_stored(client, svc, db, kwargs, status, reason):
    labels_before = db.feedback_stats()["labels"]
    rejected_before = prom.value(svc.metrics(), "driftwatch_requests_rejected_total", reason=reason)
    r = client.post("/feedback", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"] == reason and r.json()["problems"]
    assert prom.value(svc.metrics(), "driftwatch_requests_rejected_total", reason=reason) == rejected_before + 1
    assert db.feedback_stats()["labels"] == labels_before


def test_wrong_method_is_not_a_5xx(client):
    assert client.get("/predict").status_code == 405


def test_the_request_log_holds_exactly_the_accepted_requests(db, svc):
    """Last test of the module: every 200 is logged, once; nothing else is."""
    ids = db.request_ids()
    assert ids == set(ACCEPTED)
    assert db.count_predictions() == len(ACCEPTED)
    assert prom.value(svc.metrics(), "driftwatch_request_log_rows_total") == len(ACCEPTED)
