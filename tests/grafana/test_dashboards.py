"""Grafana dashboards: built by grafana/build.py, committed identical, well
formed, wired to the provisioned datasource, and querying only metric names
the code exports. (No Grafana server runs here; the end-to-end test runs every
panel query against a real Prometheus via build.iter_panel_queries.)
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stack_checks import metric_names_in_promql, missing_metric_names, require_tool

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "grafana"


def _load_build():
    spec = importlib.util.spec_from_file_location("driftwatch_grafana_build", GRAFANA / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build = _load_build()
COMMITTED = {name: json.loads((build.DASHBOARD_DIR / name).read_text()) for name in build.DASHBOARDS}
VARIABLES = {"model": "loans", "feature": "age"}


def all_exprs(d: dict) -> list[str]:
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in d["annotations"]["list"] if "expr" in a]
    exprs += [v["query"]["query"] for v in d["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_committed_json_is_what_the_builder_builds():
    for name, make in build.DASHBOARDS.items():
        assert (build.DASHBOARD_DIR / name).read_text() == build.render(make()), \
            f"{name} is stale: run python grafana/build.py"


def test_check_flag_detects_a_difference(tmp_path):
    script = GRAFANA / "build.py"
    ok = subprocess.run([sys.executable, script, "--check"], check=False, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    for name in build.DASHBOARDS:
        (tmp_path / name).write_text((build.DASHBOARD_DIR / name).read_text())
    edited = json.loads((tmp_path / "serving.json").read_text())
    edited["title"] = "edited by hand"
    (tmp_path / "serving.json").write_text(build.render(edited))
    bad = subprocess.run([sys.executable, script, "--check", "--dir", tmp_path], check=False,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "serving.json" in bad.stderr
    assert (tmp_path / "serving.json").read_text() == build.render(edited), "--check must not write"


def _provisioned_uid() -> str:
    doc = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (ds,) = doc["datasources"]
    assert ds["type"] == "prometheus"
    return ds["uid"]


def test_provisioning():
    assert _provisioned_uid() == build.DATASOURCE_UID
    doc = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "driftwatch.yml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards"


@pytest.mark.parametrize("name", sorted(build.DASHBOARDS))
def test_structure(name):
    d = COMMITTED[name]
    uid = _provisioned_uid()
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for p in d["panels"]:
        g = p["gridPos"]
        assert set(g) == {"h", "w", "x", "y"} and all(isinstance(v, int) for v in g.values())
        assert g["w"] > 0 and g["h"] > 0 and 0 <= g["x"] and g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"panel {p['title']!r} overlaps another"
        cells |= mine
        if p["type"] == "row":
            continue
        assert p["title"] and p["datasource"]["uid"] == uid
        assert p["targets"], f"panel {p['title']!r} has no query"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs))
        for t in p["targets"]:
            assert t["expr"].strip() and t["datasource"]["uid"] == uid
    for a in d["annotations"]["list"]:
        assert a["datasource"]["uid"] == uid and a["expr"]
    for v in d["templating"]["list"]:
        assert v["datasource"]["uid"] == uid


@pytest.mark.parametrize("name", sorted(build.DASHBOARDS))
def test_variables_are_defined(name):
    d = COMMITTED[name]
    defined = {v["name"] for v in d["templating"]["list"]} | set(build.BUILTIN_VARIABLES)
    assert "model" in defined
    assert d["templating"]["list"][0]["query"]["query"] == "label_values(driftwatch_model_info, model)"
    texts = all_exprs(d) + [p["title"] for p in d["panels"]]
    used = {m for text in texts for m in re.findall(r"\$\{?(\w+)", text)}
    assert used <= defined, f"undefined variables: {used - defined}"


def test_required_panels_exist():
    titles = {n: {p["title"] for p in COMMITTED[n]["panels"]} for n in COMMITTED}
    assert {"Request rate by endpoint", "/predict latency", "5xx share of API requests",
            "Rejected requests by reason", "Predictions by class", "Model version in service",
            "Spool backlog"} <= titles["serving.json"]
    assert {"Dataset drift share", "Feature drift score vs threshold: $feature", "Prediction drift",
            "Missing share by feature", "Out-of-range share by feature", "Performance vs baseline (labeled rows)",
            "Estimated performance vs baseline (no labels)", "Labeled share of the window",
            "Label delay (median)", "Alerts firing"} <= titles["model-health.json"]
    names = {a["name"] for a in COMMITTED["model-health.json"]["annotations"]["list"]}
    assert names == {"Retrains", "Promotions"}


@pytest.mark.parametrize("name", sorted(build.DASHBOARDS))
def test_iter_panel_queries_substitutes_everything(name):
    d = COMMITTED[name]
    queries = build.iter_panel_queries(d, VARIABLES, include_annotations=True)
    n_targets = sum(len(p.get("targets", [])) for p in d["panels"])
    assert len(queries) == n_targets + len(d["annotations"]["list"])
    for title, expr in queries:
        assert "$" not in expr and "$" not in title
    with pytest.raises(KeyError, match="model"):
        build.iter_panel_queries(d, {})


def test_dashboard_metric_names_exist_in_code():
    used = {n for d in COMMITTED.values() for e in all_exprs(d) for n in metric_names_in_promql(e)}
    assert len(used) > 20
    missing = missing_metric_names(used)
    assert not missing, f"used in grafana/dashboards but not defined in service/, monitors/ or driftwatch/: {missing}"


def test_every_query_is_valid_promql(tmp_path):
    """promtool parses each query as a recording rule (no server needed)."""
    promtool = require_tool("promtool", "apt-get install prometheus")
    rules = [{"record": f"driftwatch_dashboard_query_{i}", "expr": expr}
             for d in COMMITTED.values()
             for i, (_, expr) in enumerate(build.iter_panel_queries(d, VARIABLES, include_annotations=True))]
    groups = [{"name": f"q{i}", "rules": [r]} for i, r in enumerate(rules)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    proc = subprocess.run([promtool, "check", "rules", path], check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
