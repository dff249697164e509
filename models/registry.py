"""Model packages in the BentoML model store.

A package is one BentoML model whose directory holds the fitted estimator,
``package.json`` (task, schema, classes, baseline, provenance) and the
reference batch. ``BENTOML_HOME`` must be set before this module is imported
(``Settings.apply_bentoml_home``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bentoml
import joblib

from driftwatch.package import Batch, ModelPackage
from driftwatch.schema import FeatureSchema
from models.train import Trained

ESTIMATOR_FILE = "estimator.joblib"
REFERENCE_FILE = "reference.joblib"
META_FILE = "package.json"
LABEL = "driftwatch"


def save(name: str, trained: Trained, *, extra: dict[str, Any] | None = None) -> ModelPackage:
    """Store a trained model as a new version of ``name``; returns the package."""
    meta = {
        "task": trained.task,
        "schema": trained.schema.model_dump(),
        "classes": trained.classes,
        "baseline": trained.baseline,
        "trained_at": trained.trained_at,
        "trained_from": trained.trained_from,
        "train_rows": trained.train_rows,
        "reference_rows": len(trained.reference),
        "extra": extra or {},
    }
    with bentoml.models.create(name, labels={"managed-by": LABEL, "task": trained.task},
                               metadata={k: meta[k] for k in ("task", "trained_at", "trained_from", "baseline")}) as m:
        path = Path(m.path)
        joblib.dump(trained.estimator, path / ESTIMATOR_FILE)
        ref = trained.reference
        joblib.dump({"features": ref.features, "predictions": ref.predictions,
                     "probabilities": ref.probabilities, "target": ref.target}, path / REFERENCE_FILE)
        (path / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        version = m.tag.version
    return load(name, version)


def model_path(name: str, version: str) -> Path:
    return Path(bentoml.models.get(f"{name}:{version}").path)


def load(name: str, version: str = "latest") -> ModelPackage:
    """Load a package; raises ``bentoml.exceptions.NotFound`` if absent."""
    m = bentoml.models.get(f"{name}:{version}")
    path = Path(m.path)
    meta = json.loads((path / META_FILE).read_text())
    ref = joblib.load(path / REFERENCE_FILE)
    return ModelPackage(
        name=m.tag.name, version=m.tag.version, task=meta["task"],
        estimator=joblib.load(path / ESTIMATOR_FILE),
        schema=FeatureSchema.model_validate(meta["schema"]),
        reference=Batch(**ref), baseline=meta["baseline"], classes=meta["classes"],
        trained_at=meta["trained_at"], trained_from=meta["trained_from"],
        extra={"train_rows": meta.get("train_rows"), **meta.get("extra", {})},
    )


def versions(name: str | None = None) -> list[dict[str, Any]]:
    """Stored packages, newest first."""
    out = []
    for m in bentoml.models.list(name):
        if m.info.labels.get("managed-by") != LABEL:
            continue
        out.append({"name": m.tag.name, "version": m.tag.version, "created": m.info.creation_time,
                    **{k: m.info.metadata.get(k) for k in ("task", "trained_from", "baseline")}})
    return sorted(out, key=lambda r: r["created"], reverse=True)


def exists(name: str, version: str) -> bool:
    try:
        bentoml.models.get(f"{name}:{version}")
        return True
    except bentoml.exceptions.NotFound:
        return False
