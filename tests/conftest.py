"""Shared fixtures.

* ``demo_model`` (session): a model store holding the demo classifier, made
  once per session by the real CLI (``driftwatch train --demo --rows 4000``).
* ``service_factory``: real ``driftwatch serve`` processes on free ports, each
  with its own data directory and store, all sharing the session's model store.
* ``store_url`` / ``store``: parametrized over SQLite and the real PostgreSQL
  (own schema per test); ``pg_url``: PostgreSQL only.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # --import-mode=importlib does not put the repository on sys.path
    sys.path.insert(0, str(ROOT))

from tests.helpers import pg  # noqa: E402
from tests.helpers.service import ServiceProcess, new_service, run_cli  # noqa: E402


@dataclass(frozen=True)
class DemoModel:
    """The session's model store and the demo model in it."""

    home: Path  # BENTOML_HOME of the shared model store
    name: str
    version: str
    train_output: str
    data_dir: Path  # where ``driftwatch train`` ran: its SQLite store records the deployment

    @property
    def path(self) -> Path:
        return self.home / "models" / self.name / self.version


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory) -> DemoModel:
    home = tmp_path_factory.mktemp("model-store")
    data = tmp_path_factory.mktemp("train")
    out = run_cli(["train", "--demo", "--rows", "4000"], data_dir=data, bentoml_home=home, timeout=900)
    m = re.search(r"^stored (\S+):(\S+) \(", out.stdout, re.M)
    assert m, f"unexpected output of driftwatch train:\n{out.stdout}"
    return DemoModel(home=home, name=m.group(1), version=m.group(2), train_output=out.stdout, data_dir=data)


@pytest.fixture
def service_factory(demo_model, tmp_path):
    """``make(database_url=None, workers=1, env=None, start=True)`` → a ``ServiceProcess``; all killed at the end."""
    made: list[ServiceProcess] = []

    def make(database_url: str | None = None, *, workers: int = 1, env: dict | None = None,
             start: bool = True, timeout: float = 120.0) -> ServiceProcess:
        svc = new_service(demo_model, tmp_path / f"service-{len(made)}", database_url, workers=workers, env=env)
        made.append(svc)
        return svc.start(timeout) if start else svc

    yield make
    for svc in made:
        svc.kill9()


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL schema (dropped afterwards) as a SQLAlchemy URL."""
    with pg.schema() as name:
        yield pg.url(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with pg.schema() as name:
        yield pg.url(name)


@pytest.fixture
def store(store_url):
    from driftwatch.store import Store

    s = Store(store_url)
    s.create_all()
    yield s
    s.dispose()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "pg_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
