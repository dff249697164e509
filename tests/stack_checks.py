"""Helpers shared by the stack-config tests (rules, dashboards, container).

- Metric names: rules and dashboards may only use ``driftwatch_*`` names that
  the code defines. :func:`metric_names_in_promql` collects them from a
  PromQL expression (or a Go template holding queries);
  :func:`defined_metric_names` collects the string literals of the code;
  :func:`missing_metric_names` tells which used names no code defines.
- External tools: :func:`require_tool` skips a test when a binary is missing,
  except with ``CI=true``, where it fails.

>>> sorted(metric_names_in_promql('rate(driftwatch_predictions_total{model="m"}[5m]) / up'))
['driftwatch_predictions_total']
>>> sorted(exposition_candidates("driftwatch_retrains_total"))
['driftwatch_retrains', 'driftwatch_retrains_total']
>>> missing_metric_names({"driftwatch_nope_total"}, {"driftwatch_other"})
['driftwatch_nope_total']
>>> missing_metric_names({"driftwatch_model_info"}, {"driftwatch_model"})
[]
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CODE_DIRS = ("service", "monitors", "driftwatch")

_NAME = re.compile(r"(?<![A-Za-z0-9_:])(driftwatch_[a-z0-9_]+)")
_SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum", "_info")


def metric_names_in_promql(expr: str) -> set[str]:
    """Every ``driftwatch_*`` identifier in ``expr``.

    Label names of driftwatch never start with ``driftwatch_``, so every
    match is a metric name.
    """
    return set(_NAME.findall(expr))


def exposition_candidates(name: str) -> set[str]:
    """Names a definition in code may carry for exposed series ``name``.

    prometheus_client appends ``_total`` to counters, ``_info`` to Info
    metrics, ``_bucket``/``_count``/``_sum``/``_created`` to histograms and
    summaries: the code may spell the base name or the full one.
    """
    out = {name}
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            out.add(name[: -len(suffix)])
    return out


def _string_literals(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError):
        return set()
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def defined_metric_names(root: Path = REPO, dirs: Iterable[str] = CODE_DIRS) -> set[str]:
    """``driftwatch_*`` string literals in the Python sources of ``dirs``.

    A literal must be exactly the metric name (as passed to ``Counter(...)``,
    ``GaugeMetricFamily(...)`` and the like); tests are not sources.
    """
    names: set[str] = set()
    for d in dirs:
        for path in sorted((root / d).rglob("*.py")):
            if path.name.startswith("test_") or path.name == "conftest.py" or "tests" in path.parts[-2:-1]:
                continue
            names |= {s for s in _string_literals(path) if re.fullmatch(r"driftwatch_[a-z0-9_]+", s)}
    return names


def missing_metric_names(used: Iterable[str], defined: Iterable[str] | None = None) -> list[str]:
    """The names of ``used`` that no definition in ``defined`` (default: the code) exports."""
    defined = set(defined_metric_names() if defined is None else defined)
    return sorted(n for n in set(used) if not exposition_candidates(n) & defined)


def require_tool(name: str, hint: str = "") -> str:
    """Path of executable ``name``; skip if absent, but fail under ``CI=true``.

    Looks on PATH and beside the running Python (a venv's ``bin/``).
    """
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    msg = f"{name} is not installed{': ' + hint if hint else ''}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{msg} (CI=true: this check must run)")
    pytest.skip(msg)
    raise AssertionError("unreachable")
