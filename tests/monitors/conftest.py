"""Shared fixtures of the monitor tests: one small packaged Agrawal model and evaluators for two window sizes.

(The runner/app fixtures live in ``tests/monitors/monitor_fixtures.py``.)
"""

from __future__ import annotations

import pytest

from monitors.evaluator import WindowEvaluator
from tests.monitors.helpers import make_package
from tests.monitors.monitor_fixtures import (  # noqa: F401
    bentoml_home,
    load_package,
    packages,
    settings,
    store,
)


@pytest.fixture(scope="session")
def package():
    return make_package()


@pytest.fixture(scope="session")
def evaluator_100(package):
    return WindowEvaluator(window_size=100, budget=1e-3, seed=0).fit(package)


@pytest.fixture(scope="session")
def evaluator_1000(package):
    return WindowEvaluator(window_size=1000, budget=1e-3, seed=0).fit(package)
