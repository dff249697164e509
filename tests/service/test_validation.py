"""Input validation: every client mistake is a RequestError naming each problem (never a crash)."""

from __future__ import annotations

import json

import pytest

from driftwatch.schema import Feature, FeatureSchema
from service.validation import (
    MAX_PROBLEMS, REASONS, RequestError, Validator, check_content_type, feedback_labels, parse_json,
)

SCHEMA = FeatureSchema(features=[
    Feature(name="age", kind="numeric", min=18, max=90),
    Feature(name="income", kind="numeric", min=0, max=1e6, allow_missing=True),
    Feature(name="car", kind="categorical", categories=["a", "b"]),
    Feature(name="colour", kind="categorical", categories=["red"], allow_missing=True),
])
GOOD = {"age": 30, "income": 1234.5, "car": "a", "colour": "red"}


def problems_of(payload, max_instances: int = 5) -> list:
    with pytest.raises(RequestError) as e:
        Validator(SCHEMA, max_instances).check(payload)
    return e.value.problems


def pairs(problems) -> set[tuple[str, str]]:
    return {(p.loc, p.reason) for p in problems}


def test_valid_instances_pass_unchanged():
    payload = {"instances": [GOOD, {**GOOD, "income": None, "colour": None, "age": 41.5, "car": "unseen"}]}
    assert Validator(SCHEMA, 5).check(payload) == payload["instances"]


def test_exactly_the_maximum_passes():
    assert len(Validator(SCHEMA, 3).check({"instances": [GOOD] * 3})) == 3


@pytest.mark.parametrize("payload, expected", [
    ([GOOD], {("body", "bad_shape")}),
    ({"rows": [GOOD]}, {("body", "bad_shape")}),
    ({"instances": GOOD}, {("instances", "bad_shape")}),
    ({"instances": [GOOD, 3]}, {("instances[1]", "bad_shape")}),
    ({"instances": [GOOD], "debug": True}, {("body.debug", "bad_shape")}),
    ({"instances": []}, {("instances", "empty_batch")}),
    ({"instances": [GOOD] * 6}, {("instances", "too_many_instances")}),
])
def test_shape_problems(payload, expected):
    assert pairs(problems_of(payload)) == expected


def test_missing_and_unknown_features_are_each_named():
    bad = {k: v for k, v in GOOD.items() if k not in ("car", "income")}
    bad["colour_typo"] = "red"
    got = pairs(problems_of({"instances": [GOOD, bad]}))
    assert got == {("instances[1].car", "missing_feature"), ("instances[1].income", "missing_feature"),
                   ("instances[1].colour_typo", "unknown_feature")}


@pytest.mark.parametrize("feature, value", [
    ("age", "30"), ("age", True), ("age", [1]), ("age", {"v": 1}),
    ("car", 1), ("car", False), ("car", ["a"]), ("car", 2.5),
])
def test_wrong_types(feature, value):
    assert pairs(problems_of({"instances": [{**GOOD, feature: value}]})) == {(f"instances[0].{feature}", "wrong_type")}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers(value):
    assert pairs(problems_of({"instances": [{**GOOD, "income": value}]})) == {("instances[0].income", "not_finite")}


def test_integers_too_large_for_a_float_are_rejected():
    """JSON integers are unbounded; the model computes in float64."""
    got = pairs(problems_of({"instances": [{**GOOD, "age": 10 ** 400}]}))
    assert got == {("instances[0].age", "not_finite")}
    assert Validator(SCHEMA).check({"instances": [{**GOOD, "age": 10 ** 300}]})  # large but representable


def test_null_only_where_the_reference_has_missing_values():
    got = pairs(problems_of({"instances": [{**GOOD, "age": None, "car": None, "income": None, "colour": None}]}))
    assert got == {("instances[0].age", "null_not_allowed"), ("instances[0].car", "null_not_allowed")}


def test_every_problem_of_every_instance_is_listed():
    payload = {"instances": [GOOD, {**GOOD, "age": "x"}, GOOD, {**GOOD, "car": 3, "income": float("nan")}]}
    err = pytest.raises(RequestError, Validator(SCHEMA, 5).check, payload).value
    assert pairs(err.problems) == {("instances[1].age", "wrong_type"), ("instances[3].car", "wrong_type"),
                                   ("instances[3].income", "not_finite")}
    body = err.body()
    assert err.status == 422
    assert body["error"] == err.reason == err.problems[0].reason
    assert {(p["loc"], p["reason"]) for p in body["problems"]} == pairs(err.problems)
    assert all(p["message"] for p in body["problems"])
    json.dumps(body)  # the body is JSON


def test_problem_list_is_capped():
    err = pytest.raises(RequestError, Validator(SCHEMA, 1000).check, {"instances": [{**GOOD, "age": "x"}] * 120}).value
    body = err.body()
    assert len(body["problems"]) == MAX_PROBLEMS
    assert body["problems_truncated"] == 120 - MAX_PROBLEMS


@pytest.mark.parametrize("raw, reason", [
    (b"{", "malformed_json"),
    (b"", "malformed_json"),
    (b'{"instances": [1,]}', "malformed_json"),
    (b"\xff\xfe{", "malformed_json"),
    (b'{"instances": [{"age": NaN}]}', "not_finite"),
    (b'{"instances": [{"age": Infinity}]}', "not_finite"),
    (b'{"instances": [{"age": -Infinity}]}', "not_finite"),
    (b"[" * 100_000 + b"]" * 100_000, "malformed_json"),  # nesting deeper than the parser's recursion limit
])
def test_parse_json_rejects(raw, reason):
    with pytest.raises(RequestError) as e:
        parse_json(raw)
    assert (e.value.status, e.value.reason) == (400, reason)


def test_parse_json_accepts_utf8_and_large_exponents_become_inf():
    assert parse_json('{"car": "é"}'.encode()) == {"car": "é"}
    value = parse_json(b'{"instances": [{"age": 1e999}]}')["instances"][0]["age"]
    assert value == float("inf")  # ... which the validator then rejects as not finite
    assert pairs(problems_of({"instances": [{**GOOD, "age": value}]})) == {("instances[0].age", "not_finite")}


@pytest.mark.parametrize("ct", ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
                                "application/vnd.api+json"])
def test_json_content_types_pass(ct):
    check_content_type(ct)


@pytest.mark.parametrize("ct", [None, "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_other_content_types_are_415(ct):
    with pytest.raises(RequestError) as e:
        check_content_type(ct)
    assert (e.value.status, e.value.reason) == (415, "content_type")


def test_feedback_labels():
    assert feedback_labels({"labels": [{"request_id": "a" * 32, "label": 1}, {"request_id": "b", "label": "no"},
                                       {"request_id": "c", "label": True}, {"request_id": "d", "label": 0.5}]}) == \
        [("a" * 32, 1), ("b", "no"), ("c", True), ("d", 0.5)]


@pytest.mark.parametrize("payload, expected", [
    ([], {("body", "bad_shape")}),
    ({"labels": {}}, {("body", "bad_shape")}),
    ({"labels": []}, {("labels", "empty_batch")}),
    ({"labels": [{"request_id": "a"}]}, {("labels[0]", "bad_shape")}),
    ({"labels": [{"request_id": "a", "label": 1, "x": 2}]}, {("labels[0]", "bad_shape")}),
    ({"labels": [{"request_id": 5, "label": 1}]}, {("labels[0].request_id", "bad_label")}),
    ({"labels": [{"request_id": "", "label": 1}]}, {("labels[0].request_id", "bad_label")}),
    ({"labels": [{"request_id": "a" * 33, "label": 1}]}, {("labels[0].request_id", "bad_label")}),
    ({"labels": [{"request_id": "a", "label": None}]}, {("labels[0].label", "bad_label")}),
    ({"labels": [{"request_id": "a", "label": [1]}]}, {("labels[0].label", "bad_label")}),
    ({"labels": [{"request_id": "a", "label": float("nan")}]}, {("labels[0].label", "bad_label")}),
    ({"labels": [{"request_id": "ok", "label": 1}, {"request_id": 1, "label": {}}]},
     {("labels[1].request_id", "bad_label"), ("labels[1].label", "bad_label")}),
])
def test_feedback_problems(payload, expected):
    with pytest.raises(RequestError) as e:
        feedback_labels(payload)
    assert e.value.status == 422
    assert pairs(e.value.problems) == expected


def test_reasons_are_a_bounded_documented_set():
    """``reason`` is a metric label: every reason the validators produce is one of REASONS."""
    seen = set()
    for payload in ([], {"instances": []}, {"instances": [GOOD] * 9},
                    {"instances": [{**GOOD, "age": None, "car": 1, "income": float("nan"), "x": 1}]},
                    {"instances": [{"age": 1}]}):
        seen |= {p.reason for p in problems_of(payload)}
    for raw in (b"{", b"[NaN]"):
        seen.add(pytest.raises(RequestError, parse_json, raw).value.reason)
    seen.add(pytest.raises(RequestError, check_content_type, "text/plain").value.reason)
    seen.add(pytest.raises(RequestError, feedback_labels, {"labels": [{"request_id": "", "label": 1}]}).value.reason)
    assert seen == set(REASONS) - {"body_too_large"}  # that one comes from the HTTP layer (tested there)
