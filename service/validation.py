"""Request validation against the model's feature schema.

Every problem is collected (not just the first), each with a location, a
bounded ``reason`` (used as the metric label) and a message for people.

>>> from driftwatch.schema import Feature, FeatureSchema
>>> v = Validator(FeatureSchema(features=[Feature(name="age", kind="numeric", min=0, max=9),
...                                     Feature(name="car", kind="categorical", categories=["a"])]))
>>> recs, problems = v.instances(parse_json(b'{"instances": [{"age": 3, "car": "a"}]}'))
>>> recs, problems
([{'age': 3, 'car': 'a'}], [])
>>> _, problems = v.instances({"instances": [{"age": "x", "colour": 1}]})
>>> sorted(p.reason for p in problems)
['missing_feature', 'unknown_feature', 'wrong_type']
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from driftwatch.schema import FeatureSchema

REASONS = (
    "body_too_large", "content_type", "malformed_json", "bad_shape", "empty_batch", "too_many_instances",
    "missing_feature", "unknown_feature", "wrong_type", "not_finite", "null_not_allowed", "bad_label",
)
MAX_PROBLEMS = 50


@dataclass(frozen=True)
class Problem:
    loc: str
    reason: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class RequestError(Exception):
    """A client mistake: becomes a 4xx with every problem listed."""

    def __init__(self, problems: list[Problem], status: int = 422):
        super().__init__("; ".join(p.message for p in problems[:3]))
        self.problems = problems
        self.status = status

    @property
    def reason(self) -> str:
        return self.problems[0].reason

    def body(self) -> dict[str, Any]:
        more = len(self.problems) - MAX_PROBLEMS
        out: dict[str, Any] = {"error": self.reason, "detail": str(self),
                               "problems": [p.as_dict() for p in self.problems[:MAX_PROBLEMS]]}
        if more > 0:
            out["problems_truncated"] = more
        return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def parse_json(body: bytes) -> Any:
    """Strict JSON: ``NaN``/``Infinity`` tokens and invalid UTF-8 are errors.

    orjson parses what is strict RFC 8259 JSON in UTF-8 (the usual body), several times faster; anything it
    refuses goes to the standard parser, which accepts or rejects it and names the problem exactly as before.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        reason = "not_finite" if "finite" in str(e) else "malformed_json"
        raise RequestError([Problem("body", reason, f"request body is not valid JSON: {e}")], 400) from None
    except RecursionError:  # e.g. [[[[...]]]] nested deeper than the parser goes
        raise RequestError([Problem("body", "malformed_json", "request body is nested too deeply")], 400) from None


def check_content_type(content_type: str | None) -> None:
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct != "application/json" and not ct.endswith("+json"):
        raise RequestError([Problem("headers.content-type", "content_type",
                                    f"expected Content-Type application/json, got {content_type or 'none'!r}")], 415)


def _finite(v: int | float) -> bool:
    """Finite as the float64 the model computes with (JSON integers are unbounded)."""
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond float range
        return False


class Validator:
    """Checks ``{"instances": [...]}`` against a schema."""

    def __init__(self, schema: FeatureSchema, max_instances: int = 1000):
        self.schema = schema
        self.max_instances = max_instances
        self._names = schema.names
        self._known = frozenset(self._names)
        self._numeric = {f.name: f for f in schema.features if f.kind == "numeric"}
        self._nullable = {f.name for f in schema.features if f.allow_missing}
        self._categorical = tuple(n for n in self._names if n not in self._numeric)

    def instances(self, payload: Any) -> tuple[list[dict[str, Any]], list[Problem]]:
        if not isinstance(payload, dict) or "instances" not in payload:
            return [], [Problem("body", "bad_shape", 'body must be a JSON object {"instances": [{feature: value, ...}]}')]
        extra = sorted(set(payload) - {"instances"})
        problems = [Problem(f"body.{k}", "bad_shape", f"unexpected top-level key {k!r}") for k in extra]
        items = payload["instances"]
        if not isinstance(items, list):
            return [], problems + [Problem("instances", "bad_shape", "instances must be a list of objects")]
        if not items:
            return [], problems + [Problem("instances", "empty_batch", "instances is empty; send at least one")]
        if len(items) > self.max_instances:
            return [], problems + [Problem("instances", "too_many_instances",
                                           f"{len(items)} instances, the maximum is {self.max_instances}; split the batch")]
        if self._plainly_valid(items):
            return items, problems
        for i, inst in enumerate(items):
            if not isinstance(inst, dict):
                problems.append(Problem(f"instances[{i}]", "bad_shape", "each instance must be an object"))
                continue
            if len(inst) != len(self._names) or inst.keys() != self._known:
                for k in inst.keys() - self._known:
                    problems.append(Problem(f"instances[{i}].{k}", "unknown_feature",
                                            f"unknown feature {k!r}; expected {self._names}"))
                for k in self._known - inst.keys():
                    problems.append(Problem(f"instances[{i}].{k}", "missing_feature", f"feature {k!r} is missing"))
            for name in self._names:
                if name not in inst:
                    continue
                v = inst[name]
                if v is None:
                    if name not in self._nullable:
                        problems.append(Problem(f"instances[{i}].{name}", "null_not_allowed",
                                                f"{name} is null, but the model's reference data has no missing {name}"))
                elif name in self._numeric:
                    if type(v) is bool or not isinstance(v, (int, float)):
                        problems.append(Problem(f"instances[{i}].{name}", "wrong_type",
                                                f"{name} must be a number, got {type(v).__name__} {v!r:.40}"))
                    elif not _finite(v):
                        problems.append(Problem(f"instances[{i}].{name}", "not_finite", f"{name} must be finite"))
                elif not isinstance(v, str):
                    problems.append(Problem(f"instances[{i}].{name}", "wrong_type",
                                            f"{name} must be a string (a category), got {type(v).__name__} {v!r:.40}"))
        return items, problems

    def _plainly_valid(self, items: list) -> bool:
        """True if every instance is a plain dict of exactly the known features holding plainly valid values.

        The common case, checked without building anything; it accepts only what the full check below
        accepts (exact JSON types; floats finite; ints far inside the float range). Anything else, valid or
        not, gets the full check, which names every problem.
        """
        known, numeric, categorical, nullable = self._known, self._numeric, self._categorical, self._nullable
        for inst in items:
            if type(inst) is not dict or inst.keys() != known:
                return False
            for name in numeric:
                v = inst[name]
                t = type(v)
                if t is float:
                    if v - v != 0.0:  # NaN or an infinity
                        return False
                elif t is int:
                    if v.bit_length() > 1023:  # may not fit a float64
                        return False
                elif v is not None or name not in nullable:
                    return False
            for name in categorical:
                v = inst[name]
                if type(v) is not str and (v is not None or name not in nullable):
                    return False
        return True

    def check(self, payload: Any) -> list[dict[str, Any]]:
        """Validated instances, or ``RequestError`` naming every problem."""
        items, problems = self.instances(payload)
        if problems:
            raise RequestError(problems, 422)
        return items


def feedback_labels(payload: Any) -> list[tuple[str, Any]]:
    """Parse ``{"labels": [{"request_id", "label"}]}``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("labels"), list):
        raise RequestError([Problem("body", "bad_shape",
                                    'body must be {"labels": [{"request_id": "...", "label": ...}]}')])
    labels, problems = [], []
    if not payload["labels"]:
        problems.append(Problem("labels", "empty_batch", "labels is empty"))
    for i, item in enumerate(payload["labels"]):
        if not isinstance(item, dict) or set(item) != {"request_id", "label"}:
            problems.append(Problem(f"labels[{i}]", "bad_shape", "each label must be {\"request_id\", \"label\"}"))
            continue
        rid, label = item["request_id"], item["label"]
        if not isinstance(rid, str) or not rid or len(rid) > 32:
            problems.append(Problem(f"labels[{i}].request_id", "bad_label", "request_id must be a non-empty string"))
        if label is None or isinstance(label, (dict, list)) or (isinstance(label, float) and not math.isfinite(label)):
            problems.append(Problem(f"labels[{i}].label", "bad_label", "label must be a string, number or boolean"))
        labels.append((rid, label))
    if problems:
        raise RequestError(problems, 422)
    return labels
