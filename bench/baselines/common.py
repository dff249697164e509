"""What the baselines share with driftwatch: the production model of a data directory.

Settings come from the same ``DRIFTWATCH_*`` environment ``driftwatch serve``
reads, so a baseline started next to a driftwatch variant serves the very same
estimator (same name, same version, same model store).
"""

from __future__ import annotations

from typing import Any

from driftwatch.settings import Settings


def production_package():
    """The production ``ModelPackage`` of ``DRIFTWATCH_DATA_DIR`` / ``DRIFTWATCH_DATABASE_URL``."""
    settings = Settings()
    settings.apply_bentoml_home()
    from driftwatch.store import Store
    from models import registry

    store = Store(settings.database_url)
    dep = store.production(settings.model_name)
    if dep is None:
        raise LookupError(f"no production model in {settings.database_url}")
    try:
        return registry.load(dep.model_name, dep.model_version)
    finally:
        store.engine.dispose()


def predict(estimator, frame) -> dict[str, Any]:
    """The response body the baselines send: predictions and class probabilities."""
    proba = estimator.predict_proba(frame)
    return {"predictions": estimator.classes_[proba.argmax(axis=1)].tolist(),
            "probabilities": proba.round(6).tolist()}
