"""The model being served, and the hot swap to a newly promoted version."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from driftwatch.package import ModelPackage
from service.validation import Validator

log = logging.getLogger("driftwatch.model")


@dataclass(frozen=True)
class Served:
    """An immutable snapshot: a request uses one snapshot from start to end."""

    package: ModelPackage
    validator: Validator
    has_proba: bool

    @property
    def name(self) -> str:
        return self.package.name

    @property
    def version(self) -> str:
        return self.package.version

    @classmethod
    def of(cls, package: ModelPackage, max_instances: int) -> "Served":
        return cls(package, Validator(package.schema, max_instances),
                   package.task == "classification" and hasattr(package.estimator, "predict_proba"))

    def frame(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        cols = {}
        for f in self.package.schema.features:
            values = [r[f.name] for r in records]
            if f.kind == "numeric":
                cols[f.name] = np.array(values, dtype=np.float64)  # None becomes NaN
            else:
                cols[f.name] = np.array(values, dtype=object)
        return pd.DataFrame(cols)

    def predict(self, records: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]] | None]:
        """Predictions (plain Python values) and class probabilities."""
        X = self.frame(records)
        est = self.package.estimator
        if self.has_proba:
            proba = est.predict_proba(X)
            classes = est.classes_
            preds = classes[proba.argmax(axis=1)].tolist()
            return preds, np.round(proba, 6).tolist()
        preds = np.asarray(est.predict(X))
        if preds.dtype.kind == "f" and not np.isfinite(preds).all():  # JSON has no NaN: say "no prediction"
            return [v if np.isfinite(v) else None for v in preds.tolist()], None
        return preds.tolist(), None


class ModelSlot:
    """Holds the current ``Served``; a poller swaps it when production changes."""

    def __init__(self, load: Callable[[str, str], ModelPackage], production: Callable[[], Any],
                 max_instances: int, on_swap: Callable[[Served | None, Served], None] = lambda old, new: None):
        self._load, self._production = load, production
        self.max_instances = max_instances
        self.on_swap = on_swap
        self.current: Served | None = None

    def refresh(self) -> bool:
        """Load the production version if it is not the one served. Blocking; True if swapped."""
        dep = self._production()
        if dep is None:
            if self.current is None:
                raise LookupError("no production model in the store: run `driftwatch train --demo` "
                                  "(or `driftwatch train --data ...` / `driftwatch import ...`) first")
            return False
        cur = self.current
        if cur is not None and (cur.name, cur.version) == (dep.model_name, dep.model_version):
            return False
        new = Served.of(self._load(dep.model_name, dep.model_version), self.max_instances)
        self.current = new
        self.on_swap(cur, new)
        log.warning("serving %s:%s%s", new.name, new.version, f" (was {cur.version})" if cur else "")
        return True

    async def poll(self, every: float) -> None:
        """Follow promotions; store outages only delay the next swap."""
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as e:  # noqa: BLE001 - keep serving the current model
                log.error("model refresh failed, still serving %s: %s",
                          self.current.version if self.current else None, e)
