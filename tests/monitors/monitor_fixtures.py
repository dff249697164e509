"""Runner and app fixtures (imported by ``conftest.py``): two versions of a small demo model in a temporary BentoML store, a store, settings.

BENTOML_HOME must be set before BentoML first resolves its model store, so it
is set when this file is imported (unless the environment already names one);
the fixtures then ask BentoML which home it actually uses.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

_HOME = tempfile.mkdtemp(prefix="dw-monitor-bentoml-")
atexit.register(shutil.rmtree, _HOME, True)
os.environ.setdefault("BENTOML_HOME", _HOME)

MODEL = "monitor-test"


@pytest.fixture(scope="session")
def bentoml_home() -> Path:
    from bentoml._internal.configuration.containers import BentoMLContainer
    return Path(BentoMLContainer.bentoml_home.get())


@pytest.fixture(scope="session")
def packages(bentoml_home):
    """Two versions (v1, v2) of a logistic-regression demo model trained on 3000 Agrawal rows."""
    from models import registry
    from models.datagen import TARGET, demo_frame
    from models.train import train_frame

    out = []
    for seed in (7, 8):
        trained = train_frame(demo_frame(3000, seed=seed), TARGET, estimator="logreg",
                              trained_from=f"test seed={seed}", seed=seed, progress=False)
        out.append(registry.save(MODEL, trained))
    return out


@pytest.fixture
def settings(tmp_path, bentoml_home):
    from driftwatch.settings import Settings
    return Settings(data_dir=tmp_path, bentoml_home=bentoml_home, window_size=200, window_min_rows=50,
                    monitor_interval_seconds=0.2, calibration_resamples=300, alert_token="s3cret")


@pytest.fixture
def store(settings):
    from driftwatch.store import Store
    s = Store(settings.database_url)
    s.create_all()
    yield s
    s.dispose()


@pytest.fixture
def load_package(bentoml_home):
    from models import registry
    return registry.load


def log_predictions(store, package, n: int, *, seed: int, ts: dt.datetime | None = None, **drift):
    """Predict ``n`` Agrawal rows with ``package`` and log them as the service would; returns (rows, true labels)."""
    from models.datagen import agrawal
    from models.train import outputs, python_value

    X, y = agrawal(n, seed=seed, **drift)
    X = package.schema.coerce(X)
    pred, proba = outputs(package.estimator, X)
    ts = ts or dt.datetime.now(dt.timezone.utc)
    rows = [{"request_id": uuid.uuid4().hex, "ts": ts, "model_name": package.name, "model_version": package.version,
             "features": {k: python_value(v) for k, v in rec.items()}, "prediction": python_value(p),
             "probabilities": None if proba is None else [round(float(x), 6) for x in proba[i]], "latency_ms": 1.0}
            for i, (rec, p) in enumerate(zip(X.to_dict("records"), pred))]
    store.insert_predictions(rows)
    return rows, [int(v) for v in y]
