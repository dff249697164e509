"""Prometheus rules and Alertmanager config: validated by promtool / amtool,
unit-tested (prometheus/tests/*.yml), complete, and using only metric names
the code exports. The same checks run on copies rendered by
driftwatch.stack_config, as `driftwatch up` and the end-to-end test use them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from driftwatch import stack_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stack_checks import metric_names_in_promql, missing_metric_names, require_tool

REPO = Path(__file__).resolve().parents[2]
PROM = REPO / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))
RUNBOOK = REPO / "docs" / "runbook.md"

# What the alerting issue asks for (alert name -> severities it must come in).
REQUIRED_ALERTS = {
    "DriftwatchDatasetDrift": {"warning", "critical"},
    "DriftwatchFeatureDrift": {"info"},
    "DriftwatchPredictionDrift": {"warning"},
    "DriftwatchConceptDrift": {"critical"},
    "DriftwatchPerformanceBelowBaseline": {"warning", "critical"},
    "DriftwatchEstimatedPerformanceDrop": {"warning"},
    "DriftwatchMissingValues": {"warning"},
    "DriftwatchOutOfRange": {"warning"},
    "DriftwatchUnseenCategories": {"warning"},
    "DriftwatchServiceDown": {"critical"},
    "DriftwatchHighErrorRate": {"warning", "critical"},
    "DriftwatchLatencyP99High": {"warning"},
    "DriftwatchRejectedRequestsSpike": {"warning"},
    "DriftwatchNoTraffic": {"warning"},
    "DriftwatchRequestLogSpooling": {"warning"},
    "DriftwatchMonitorDown": {"critical"},
    "DriftwatchMonitorStale": {"warning"},
}
# Alerts that ask the monitor to retrain, with the severity that does.
RETRAIN_ALERTS = {
    ("DriftwatchDatasetDrift", "critical"),
    ("DriftwatchConceptDrift", "critical"),
    ("DriftwatchPerformanceBelowBaseline", "critical"),
}


def run(*cmd: str | Path, cwd: Path | None = None) -> str:
    proc = subprocess.run([str(c) for c in cmd], check=False, cwd=cwd, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{out}"
    return out


def alert_rules(files=RULE_FILES) -> list[dict]:
    rules = []
    for path in files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool", "apt-get install prometheus")


@pytest.fixture(scope="module")
def amtool() -> str:
    return require_tool("amtool", "apt-get install prometheus-alertmanager")


# --- the repository's files ---------------------------------------------------

def test_promtool_check_config(promtool):
    out = run(promtool, "check", "config", PROM / "prometheus.yml")
    assert f"{len(RULE_FILES)} rule files found" in out


def test_promtool_check_rules(promtool):
    run(promtool, "check", "rules", *RULE_FILES)


def test_promtool_unit_tests(promtool):
    run(promtool, "test", "rules", *TEST_FILES, cwd=PROM)


def test_amtool_check_config(amtool):
    run(amtool, "check-config", PROM / "alertmanager.yml")


@pytest.mark.parametrize("labels, receivers", [
    (["alertname=DriftwatchConceptDrift", "action=retrain", "severity=critical", "model=m"], "retrain,people"),
    (["alertname=DriftwatchDatasetDrift", "severity=warning", "model=m"], "people"),
    (["alertname=DriftwatchFeatureDrift", "severity=info", "model=m"], "people"),
    (["alertname=DriftwatchServiceDown", "severity=critical"], "people"),
    (["alertname=Unknown"], "people"),
])
def test_amtool_routes(amtool, labels, receivers):
    run(amtool, "config", "routes", "test", f"--config.file={PROM / 'alertmanager.yml'}",
        f"--verify.receivers={receivers}", *labels)


def test_required_alerts_exist_with_their_severities():
    found: dict[str, set[str]] = {}
    for r in alert_rules():
        found.setdefault(r["alert"], set()).add(r["labels"]["severity"])
    assert found == REQUIRED_ALERTS


def _runbook_anchors() -> set[str]:
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^a-z0-9 _-]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_metadata(rule):
    labels, ann = rule["labels"], rule["annotations"]
    assert labels["severity"] in {"critical", "warning", "info"}
    assert labels["category"] in {"drift", "performance", "quality", "serving", "pipeline"}
    assert set(ann) == {"summary", "description", "runbook_url"}
    assert "{{" in ann["description"], "the description must carry values"
    page, _, anchor = ann["runbook_url"].partition("#")
    assert page == "docs/runbook.md" and anchor in _runbook_anchors()
    assert stack_config.parse_duration(rule["for"]) >= 300, "production durations are minutes"
    retrain = (rule["alert"], labels["severity"]) in RETRAIN_ALERTS
    assert labels.get("action") == ("retrain" if retrain else None)


def _unit_cases() -> list[tuple[str, str, float, list[dict]]]:
    """(test group, alertname, eval seconds, expected alerts) of every unit test."""
    cases = []
    for path in TEST_FILES:
        doc = yaml.safe_load(path.read_text())
        for group in doc["tests"]:
            for t in group.get("alert_rule_test", []):
                cases.append((f"{path.name}:{group['name']}", t["alertname"],
                              stack_config.parse_duration(t["eval_time"]), t.get("exp_alerts") or []))
    return cases


@pytest.mark.parametrize("name, severity", sorted((a, s) for a, ss in REQUIRED_ALERTS.items() for s in ss))
def test_every_alert_is_unit_tested(name, severity):
    """Firing with exact labels and annotations, silent one evaluation before,
    and a case where it must not fire."""
    cases = [c for c in _unit_cases() if c[1] == name]
    step = 60.0  # evaluation_interval of every test file

    def has(alerts):
        return any(a["exp_labels"].get("severity") == severity for a in alerts)

    firing = [(g, t) for g, _, t, alerts in cases if has(alerts)]
    assert firing, f"{name}/{severity} never expected to fire"
    for _, _, _, alerts in cases:
        for a in alerts:
            assert {"summary", "description", "runbook_url"} <= set(a["exp_annotations"])
    silent_before = [(g, t) for g, t in firing
                     if any(c[0] == g and c[2] == t - step and not has(c[3]) for c in cases)]
    assert silent_before, f"{name}/{severity}: no case silent one step before it fires"
    assert any(not alerts for _, _, _, alerts in cases), f"{name}: no case where it must not fire"


def test_rule_metric_names_exist_in_code():
    used = set()
    for r in alert_rules():
        used |= metric_names_in_promql(r["expr"])
        for text in r["annotations"].values():
            used |= metric_names_in_promql(text)
    assert used, "no driftwatch_ metric in the rules?"
    missing = missing_metric_names(used)
    assert not missing, f"used in prometheus/rules but not defined in service/, monitors/ or driftwatch/: {missing}"


def test_metric_name_check_can_fail(tmp_path):
    (tmp_path / "monitors").mkdir()
    (tmp_path / "monitors" / "exporter.py").write_text(
        'from prometheus_client import Counter\nC = Counter("driftwatch_retrains", "doc")\n')
    from stack_checks import defined_metric_names
    defined = defined_metric_names(tmp_path, ("monitors",))
    assert defined == {"driftwatch_retrains"}
    assert missing_metric_names({"driftwatch_retrains_total"}, defined) == []
    assert missing_metric_names({"driftwatch_retrain_total"}, defined) == ["driftwatch_retrain_total"]


# --- rendered copies ----------------------------------------------------------

def _render(tmp: Path, for_scale: float, people: str | None, kind: str = "webhook") -> dict[str, Path]:
    rules = tmp / "rules"
    stack_config.render_rules(PROM / "rules", rules, for_scale=for_scale, min_for="1s")
    prom = tmp / "prometheus.yml"
    prom.write_text(stack_config.render_prometheus_config(
        ["127.0.0.1:13000", "127.0.0.1:13002"], "127.0.0.1:13001", "127.0.0.1:19093", rules,
        scrape_interval="1s", evaluation_interval="1s", prometheus_target="127.0.0.1:19090"))
    token = stack_config.write_token_file(tmp / "token", "s3cret")
    am = tmp / "alertmanager.yml"
    am.write_text(stack_config.render_alertmanager_config(
        "http://127.0.0.1:13001/alerts", token, people, people_webhook_kind=kind,
        group_wait="1s", group_interval="2s", repeat_interval="1m"))
    return {"rules": rules, "prometheus": prom, "alertmanager": am}


@pytest.mark.parametrize("people, kind", [(None, "webhook"), ("http://127.0.0.1:18080/hook?a=1&b=2", "webhook"),
                                          ("https://hooks.slack.example/services/T/B/X", "slack")])
def test_rendered_configs_pass_promtool_and_amtool(tmp_path, promtool, amtool, people, kind):
    paths = _render(tmp_path, 0.01, people, kind)
    out = run(promtool, "check", "config", paths["prometheus"])
    assert f"{len(RULE_FILES)} rule files found" in out
    run(amtool, "check-config", paths["alertmanager"])
    run(amtool, "config", "routes", "test", f"--config.file={paths['alertmanager']}",
        "--verify.receivers=retrain,people", "action=retrain", "severity=critical")
    cfg = yaml.safe_load(paths["alertmanager"].read_text())
    retrain = next(r for r in cfg["receivers"] if r["name"] == "retrain")["webhook_configs"][0]
    assert retrain["url"] == "http://127.0.0.1:13001/alerts"
    assert retrain["http_config"]["authorization"]["credentials_file"] == str((tmp_path / "token").resolve())
    people_rcv = next(r for r in cfg["receivers"] if r["name"] == "people")
    if people is None:
        assert set(people_rcv) == {"name"}
    elif kind == "slack":
        assert people_rcv["slack_configs"][0]["api_url"] == people
    else:
        assert people_rcv["webhook_configs"][0]["url"] == people


def test_rendered_rules_scale_only_for(tmp_path, promtool):
    paths = _render(tmp_path, 0.01, None)
    original = {(r["alert"], r["labels"]["severity"]): r for r in alert_rules()}
    rendered = alert_rules(sorted(paths["rules"].glob("*.yml")))
    assert len(rendered) == len(original)
    for r in rendered:
        o = original[(r["alert"], r["labels"]["severity"])]
        assert stack_config.parse_duration(r["for"]) == max(1.0, stack_config.parse_duration(o["for"]) * 0.01)
        assert (r["expr"], r["labels"], r["annotations"]) == (o["expr"], o["labels"], o["annotations"])
    run(promtool, "check", "rules", *sorted(paths["rules"].glob("*.yml")))


def test_rendered_unscaled_rules_pass_the_unit_tests(tmp_path, promtool):
    """Rendering (YAML load and dump) changes nothing the unit tests can see."""
    stack_config.render_rules(PROM / "rules", tmp_path / "rules", for_scale=1.0)
    shutil.copytree(PROM / "tests", tmp_path / "tests")
    run(promtool, "test", "rules", *sorted((tmp_path / "tests").glob("*.yml")), cwd=tmp_path)
