"""driftwatch.stack_config without external tools: substitution and errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from driftwatch import stack_config as sc


def test_prometheus_targets_rules_and_intervals(tmp_path):
    cfg = yaml.safe_load(sc.render_prometheus_config(
        ["10.0.0.1:3000", "10.0.0.2:3000"], "10.0.0.3:3001", "10.0.0.4:9093", tmp_path / "rules",
        "5s", "2s"))
    assert cfg["global"] == {"scrape_interval": "5s", "evaluation_interval": "2s"}
    assert cfg["rule_files"] == [str((tmp_path / "rules").resolve() / "*.yml")]
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in cfg["scrape_configs"]}
    assert jobs == {"driftwatch-service": ["10.0.0.1:3000", "10.0.0.2:3000"],
                    "driftwatch-monitor": ["10.0.0.3:3001"], "alertmanager": ["10.0.0.4:9093"]}
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["10.0.0.4:9093"]


@pytest.mark.parametrize("target", ["http://127.0.0.1:3000", "127.0.0.1", "host:1/metrics"])
def test_prometheus_rejects_bad_targets(tmp_path, target):
    with pytest.raises(ValueError, match="host:port"):
        sc.render_prometheus_config(target, "m:1", "a:2", tmp_path)


def test_prometheus_rejects_bad_interval(tmp_path):
    with pytest.raises(ValueError, match="duration"):
        sc.render_prometheus_config("s:1", "m:1", "a:2", tmp_path, scrape_interval="fast")


def test_alertmanager_overrides_every_route_that_sets_a_value(tmp_path):
    cfg = yaml.safe_load(sc.render_alertmanager_config(
        "http://m:3001/alerts", tmp_path / "t", None, group_wait="1s", group_interval="2s",
        repeat_interval="3s", resolve_timeout="10s"))
    root = cfg["route"]
    assert (root["group_wait"], root["group_interval"], root["repeat_interval"]) == ("1s", "2s", "3s")
    for child in root["routes"]:
        for key, value in (("group_wait", "1s"), ("group_interval", "2s"), ("repeat_interval", "3s")):
            assert child.get(key, value) == value
    assert cfg["global"]["resolve_timeout"] == "10s"


def test_alertmanager_without_overrides_keeps_the_repository_values(tmp_path):
    source = yaml.safe_load((sc.config_dir() / "alertmanager.yml").read_text())
    cfg = yaml.safe_load(sc.render_alertmanager_config("http://m:3001/alerts", tmp_path / "t", None))
    assert cfg["route"] == source["route"]
    assert cfg["inhibit_rules"] == source["inhibit_rules"]


@pytest.mark.parametrize("kwargs", [
    {"monitor_webhook_url": "m:3001/alerts"},
    {"people_webhook_url": "hooks.example.com/x"},
    {"people_webhook_kind": "email"},
    {"group_wait": "soon"},
])
def test_alertmanager_rejects_bad_input(tmp_path, kwargs):
    args = {"monitor_webhook_url": "http://m:3001/alerts", "token_file": tmp_path / "t",
            "people_webhook_url": "http://people/x"} | kwargs
    with pytest.raises(ValueError):
        sc.render_alertmanager_config(**args)


def test_token_file_is_private(tmp_path):
    path = sc.write_token_file(tmp_path / "sub" / "token", "abc")
    assert path.read_text() == "abc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ValueError):
        sc.write_token_file(tmp_path / "t2", "")


def test_render_rules_prefixes_runbook_urls(tmp_path):
    written = sc.render_rules(sc.config_dir() / "rules", tmp_path, runbook_base_url="https://example.org/repo/blob/main/")
    urls = [r["annotations"]["runbook_url"] for p in written
            for g in yaml.safe_load(p.read_text())["groups"] for r in g["rules"]]
    assert urls and all(u.startswith("https://example.org/repo/blob/main/docs/runbook.md#") for u in urls)


def test_render_rules_needs_rule_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        sc.render_rules(tmp_path / "empty", tmp_path / "out")


def test_cli_alertmanager_writes_token_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DW_TEST_TOKEN", "tok")
    monkeypatch.setenv("DW_TEST_PEOPLE", "http://people:8080/hook")
    out = tmp_path / "am" / "alertmanager.yml"
    assert sc.main(["alertmanager", "--out", str(out), "--monitor-webhook-url", "http://monitor:3001/alerts",
                    "--token-file", str(tmp_path / "am" / "token"), "--token-env", "DW_TEST_TOKEN",
                    "--people-webhook-url-env", "DW_TEST_PEOPLE"]) == 0
    assert (tmp_path / "am" / "token").read_text() == "tok"
    cfg = yaml.safe_load(out.read_text())
    people = next(r for r in cfg["receivers"] if r["name"] == "people")
    assert people["webhook_configs"][0]["url"] == "http://people:8080/hook"


def test_cli_alertmanager_refuses_an_empty_token(tmp_path, monkeypatch):
    monkeypatch.delenv("DW_TEST_TOKEN", raising=False)
    with pytest.raises(SystemExit):
        sc.main(["alertmanager", "--out", str(tmp_path / "a.yml"), "--monitor-webhook-url", "http://m:1/alerts",
                 "--token-file", str(tmp_path / "t"), "--token-env", "DW_TEST_TOKEN"])
    assert not (tmp_path / "t").exists()


def test_config_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DRIFTWATCH_PROMETHEUS_DIR", str(tmp_path))
    assert sc.config_dir() == tmp_path
    monkeypatch.delenv("DRIFTWATCH_PROMETHEUS_DIR")
    assert (sc.config_dir() / "prometheus.yml").is_file()
    assert os.path.isdir(Path(sc.config_dir()) / "rules")
