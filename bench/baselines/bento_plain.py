"""Baseline: a plain, default BentoML 1.4 service with the same model and no logging.

``@bentoml.service`` and ``@bentoml.api`` with their defaults (sync API, access
log on, metrics and tracing middleware on, no batching); the input is a
pydantic model built from the model's feature schema, so BentoML validates it.

    bentoml serve bench.baselines.bento_plain:PlainBento --port 3000
"""

from __future__ import annotations

from typing import Literal, Optional

import pandas as pd
from pydantic import create_model

from bench.baselines.common import predict, production_package

PACKAGE = production_package()  # sets BENTOML_HOME before bentoml is imported

import bentoml  # noqa: E402


def _field(f):
    if f.kind == "numeric":
        t = float
    else:
        t = Literal[tuple(f.categories)] if f.categories else str
    return (Optional[t], None) if f.allow_missing else (t, ...)


Instance = create_model("Instance", **{f.name: _field(f) for f in PACKAGE.schema.features})


@bentoml.service
class PlainBento:
    def __init__(self) -> None:
        self.estimator = PACKAGE.estimator

    @bentoml.api
    def predict(self, instances: list[Instance]) -> dict:  # type: ignore[valid-type]
        return predict(self.estimator, pd.DataFrame([i.model_dump() for i in instances]))
