"""``driftwatch up``: the service, the monitor, Prometheus and Alertmanager, wired together.

Each part is a child process in its own process group, with its data under
``<data dir>``; configs are rendered from the repository's ``prometheus/``
files with this stack's ports. Ctrl-C (or SIGTERM) stops everything.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from driftwatch import stack_config as sc
from driftwatch.settings import Settings

INSTALL_HINT = ("Prometheus/Alertmanager not found. Install Debian's packages:\n"
                "    sudo apt-get install prometheus prometheus-alertmanager\n"
                "or run without them: driftwatch up --no-prometheus")


@dataclass
class StackOptions:
    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    for_scale: float = 1.0
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None
    prometheus: bool = True
    startup_timeout: float = 90.0


@dataclass
class Part:
    name: str
    args: list[str]
    health: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None


def find_binaries() -> dict[str, str] | None:
    found = {n: shutil.which(n) for n in ("prometheus", "prometheus-alertmanager")}
    if not found["prometheus-alertmanager"]:
        found["prometheus-alertmanager"] = shutil.which("alertmanager")
    return found if all(found.values()) else None


class Stack:
    def __init__(self, settings: Settings, options: StackOptions, out=print):
        self.s, self.o, self.out = settings, options, out
        self.parts: list[Part] = []
        self.token = settings.alert_token or secrets.token_urlsafe(24)

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "driftwatch.cli", *args]

    def plan(self) -> list[Part]:
        s, o = self.s, self.o
        logs = s.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = {**s.to_env(), "DRIFTWATCH_ALERT_TOKEN": self.token}
        parts = [
            Part("service", self._cli("serve"), f"{s.service_url}/readyz", logs / "service.log", env),
            Part("monitor", self._cli("monitor"), f"{s.monitor_url}/healthz", logs / "monitor.log", env),
        ]
        if not o.prometheus:
            return parts
        bins = find_binaries()
        if bins is None:
            raise RuntimeError(INSTALL_HINT)
        pdir, adir = s.data_dir / "prometheus", s.data_dir / "alertmanager"
        rules = sc.render_rules(sc.config_dir() / "rules", pdir / "rules", for_scale=o.for_scale)
        assert rules, "no alert rules found in prometheus/rules"
        host = lambda url: url.split("://", 1)[1].rstrip("/")  # noqa: E731
        prom_addr, am_addr = f"127.0.0.1:{s.prometheus_port}", f"127.0.0.1:{s.alertmanager_port}"
        (pdir / "prometheus.yml").write_text(sc.render_prometheus_config(
            host(s.service_url), host(s.monitor_url), am_addr, pdir / "rules",
            o.scrape_interval, o.evaluation_interval, prometheus_target=prom_addr))
        token_file = sc.write_token_file(adir / "alert_token", self.token)
        (adir / "alertmanager.yml").write_text(sc.render_alertmanager_config(
            f"{s.monitor_url}/alerts", token_file, s.people_webhook_url or None,
            people_webhook_kind=s.people_webhook_kind, group_wait=o.group_wait,
            group_interval=o.group_interval, repeat_interval=o.repeat_interval))
        parts += [
            Part("prometheus", [bins["prometheus"], f"--config.file={pdir / 'prometheus.yml'}",
                                f"--storage.tsdb.path={pdir / 'tsdb'}", f"--web.listen-address={prom_addr}",
                                "--web.enable-lifecycle", "--storage.tsdb.retention.time=15d"],
                 f"http://{prom_addr}/-/ready", logs / "prometheus.log"),
            Part("alertmanager", [bins["prometheus-alertmanager"], f"--config.file={adir / 'alertmanager.yml'}",
                                  f"--storage.path={adir / 'data'}", f"--web.listen-address={am_addr}",
                                  "--cluster.listen-address="],
                 f"http://{am_addr}/-/ready", logs / "alertmanager.log"),
        ]
        return parts

    def start(self) -> None:
        self.parts = self.plan()
        for p in self.parts:
            log = open(p.log, "ab")
            p.proc = subprocess.Popen(p.args, env={**os.environ, **p.env}, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.o.startup_timeout
        for p in self.parts:
            while not _healthy(p.health):
                if p.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{p.name} exited with code {p.proc.returncode}; see {p.log}:\n{_tail(p.log)}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{p.name} not healthy after {self.o.startup_timeout:.0f} s ({p.health}); see {p.log}")
                time.sleep(0.3)

    def urls(self) -> dict[str, str]:
        s = self.s
        out = {"service (POST /predict, /feedback; GET /model, /metrics, docs at /)": s.service_url,
               "monitor (GET /status, /reports/latest, /metrics)": s.monitor_url}
        if self.o.prometheus:
            out["Prometheus (alerts at /alerts)"] = f"http://127.0.0.1:{s.prometheus_port}"
            out["Alertmanager"] = f"http://127.0.0.1:{s.alertmanager_port}"
        return out

    def wait(self) -> int:
        """Block until a part dies or we are told to stop; returns an exit code."""
        while True:
            for p in self.parts:
                if p.proc.poll() is not None:
                    self.out(f"{p.name} exited with code {p.proc.returncode}; stopping the stack. Log: {p.log}")
                    self.out(_tail(p.log))
                    self.stop()
                    return 1
            time.sleep(0.5)

    def stop(self, timeout: float = 15.0) -> None:
        for p in reversed(self.parts):
            if p.proc is not None and p.proc.poll() is None:
                try:
                    os.killpg(p.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for p in self.parts:
            if p.proc is None:
                continue
            try:
                p.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.proc.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001
        return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
