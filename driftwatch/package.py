"""The model package: an estimator with everything the monitor needs about it.

Stored in the BentoML model store by ``models.registry``; this module only
defines the shape so that ``service`` and ``monitors`` agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from driftwatch.schema import FeatureSchema

Task = Literal["classification", "regression"]


@dataclass
class Batch:
    """Rows with the model's outputs: reference data, or a monitoring window.

    ``probabilities`` is (n, n_classes) for classifiers, None for regressors;
    ``target`` holds labels, NaN/None where unknown.
    """

    features: pd.DataFrame
    predictions: pd.Series
    probabilities: np.ndarray | None = None
    target: pd.Series | None = None

    def __len__(self) -> int:
        return len(self.features)


@dataclass
class ModelPackage:
    """A fitted estimator plus schema, reference batch and baseline metrics."""

    name: str
    version: str
    task: Task
    estimator: Any
    schema: FeatureSchema
    reference: Batch
    baseline: dict[str, float]
    classes: list[str] | None = None
    trained_at: str = ""
    trained_from: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` shows."""
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "classes": self.classes,
            "features": [f.model_dump(exclude_none=True) for f in self.schema.features],
            "baseline": self.baseline,
            "trained_at": self.trained_at,
            "trained_from": self.trained_from,
            "reference_rows": len(self.reference),
        }
