"""Render the repository's Prometheus and Alertmanager configs for a running stack.

The files under ``prometheus/`` are the source of truth (checked by promtool
and amtool in the tests). A running stack needs copies with its own ports,
paths and secrets; Alertmanager cannot expand environment variables, so the
bearer token of the monitor's ``POST /alerts`` goes into a file that the
caller writes (:func:`write_token_file`) and the config names it.

Pure functions: each loads a source file, substitutes, and returns YAML text
(or, for rules, writes the copies where it is told).

>>> parse_duration("1h30m")
5400.0
>>> format_duration(5400)
'1h30m'
>>> scale_duration("10m", 0.01)
'6s'
>>> scale_duration("15m", 0.001, minimum="1s")
'1s'
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "config_dir",
    "format_duration",
    "parse_duration",
    "render_alertmanager_config",
    "render_prometheus_config",
    "render_rules",
    "scale_duration",
    "write_token_file",
]

SERVICE_JOB = "driftwatch-service"
MONITOR_JOB = "driftwatch-monitor"
PROMETHEUS_JOB = "prometheus"
ALERTMANAGER_JOB = "alertmanager"

_UNITS_MS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000,
             "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
_DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")


def config_dir() -> Path:
    """The ``prometheus/`` folder: ``DRIFTWATCH_PROMETHEUS_DIR`` or the repository's.

    The container image copies it to a fixed place and sets the variable,
    since an installed wheel carries no repository around it.
    """
    env = os.environ.get("DRIFTWATCH_PROMETHEUS_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "prometheus"


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``90s``, ``1h30m``, ``500ms``.

    >>> parse_duration("500ms")
    0.5
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    ValueError: not a Prometheus duration: 'soon'
    """
    text = str(text).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNITS_MS[u] for n, u in parts) / 1000.0


def format_duration(seconds: float) -> str:
    """Shortest Prometheus duration for ``seconds`` (rounded to milliseconds).

    >>> format_duration(0)
    '0s'
    >>> format_duration(0.25)
    '250ms'
    >>> format_duration(3661)
    '1h1m1s'
    """
    ms = round(seconds * 1000)
    if ms < 0:
        raise ValueError("negative duration")
    if ms == 0:
        return "0s"
    out = []
    for unit in ("h", "m", "s", "ms"):
        n, ms = divmod(ms, _UNITS_MS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def scale_duration(text: str, factor: float, minimum: str = "0s") -> str:
    """``text`` times ``factor``, never below ``minimum``."""
    if factor < 0:
        raise ValueError("factor must be >= 0")
    return format_duration(max(parse_duration(text) * factor, parse_duration(minimum)))


def _load(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise TypeError(f"{path}: not a YAML mapping")
    return data


def _dump(data: dict[str, Any], header: str) -> str:
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=1_000_000)
    return f"# {header}\n{body}"


def _targets(value: str | Sequence[str]) -> list[str]:
    targets = [value] if isinstance(value, str) else list(value)
    for t in targets:
        if "://" in t or "/" in t or ":" not in t:
            raise ValueError(f"scrape target must be host:port, got {t!r}")
    return targets


def render_prometheus_config(
    service_target: str | Sequence[str],
    monitor_target: str,
    alertmanager_target: str,
    rules_dir: Path,
    scrape_interval: str = "15s",
    evaluation_interval: str = "15s",
    *,
    prometheus_target: str | None = None,
    source: Path | None = None,
) -> str:
    """``prometheus/prometheus.yml`` with these targets, intervals and rules.

    ``service_target`` may list several replicas. The self-scrape job is kept
    only when ``prometheus_target`` is given. ``rule_files`` becomes
    ``<rules_dir>/*.yml`` (absolute), e.g. the output of :func:`render_rules`.
    """
    parse_duration(scrape_interval), parse_duration(evaluation_interval)
    cfg = _load(source or config_dir() / "prometheus.yml")
    cfg.setdefault("global", {})
    cfg["global"]["scrape_interval"] = scrape_interval
    cfg["global"]["evaluation_interval"] = evaluation_interval
    cfg["rule_files"] = [str(Path(rules_dir).resolve() / "*.yml")]
    cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": _targets(alertmanager_target)}]}]}
    wanted = {
        SERVICE_JOB: _targets(service_target),
        MONITOR_JOB: _targets(monitor_target),
        ALERTMANAGER_JOB: _targets(alertmanager_target),
    }
    if prometheus_target is not None:
        wanted[PROMETHEUS_JOB] = _targets(prometheus_target)
    jobs = []
    for job in cfg.get("scrape_configs", []):
        name = job["job_name"]
        if name in wanted:
            job["static_configs"] = [{"targets": wanted.pop(name)}]
            jobs.append(job)
        elif name != PROMETHEUS_JOB:
            jobs.append(job)
    if wanted:
        raise ValueError(f"source config lacks the jobs {sorted(wanted)}")
    cfg["scrape_configs"] = jobs
    return _dump(cfg, "rendered by driftwatch.stack_config from prometheus/prometheus.yml")


def _walk_routes(route: dict[str, Any]):
    yield route
    for child in route.get("routes", []) or []:
        yield from _walk_routes(child)


def render_alertmanager_config(
    monitor_webhook_url: str,
    token_file: Path,
    people_webhook_url: str | None = None,
    *,
    people_webhook_kind: str = "webhook",
    group_wait: str | None = None,
    group_interval: str | None = None,
    repeat_interval: str | None = None,
    resolve_timeout: str | None = None,
    source: Path | None = None,
) -> str:
    """``prometheus/alertmanager.yml`` wired to this monitor and these people.

    - receiver ``retrain``: POST to ``monitor_webhook_url`` with the bearer
      token read from ``token_file`` at send time (absolute path written).
    - receiver ``people``: ``people_webhook_url`` as a generic webhook
      (Alertmanager's JSON) or, with ``people_webhook_kind="slack"``, a Slack
      incoming webhook; ``None`` leaves the receiver empty (notifications to
      people are dropped, the alerts stay visible in Alertmanager).
    - ``group_wait`` / ``group_interval`` / ``repeat_interval``: when given,
      replace the value on the root route and on every route that sets it
      (end-to-end tests use seconds).
    """
    for url in filter(None, (monitor_webhook_url, people_webhook_url)):
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"webhook URL must be http(s)://host..., got {url!r}")
    if people_webhook_kind not in ("webhook", "slack"):
        raise ValueError("people_webhook_kind must be 'webhook' or 'slack'")
    cfg = _load(source or config_dir() / "alertmanager.yml")
    overrides = {"group_wait": group_wait, "group_interval": group_interval,
                 "repeat_interval": repeat_interval}
    for route in _walk_routes(cfg["route"]):
        for key, value in overrides.items():
            if value is not None and (route is cfg["route"] or key in route):
                parse_duration(value)
                route[key] = value
    if resolve_timeout is not None:
        parse_duration(resolve_timeout)
        cfg.setdefault("global", {})["resolve_timeout"] = resolve_timeout

    receivers = {r["name"]: r for r in cfg["receivers"]}
    if set(receivers) != {"retrain", "people"}:
        raise ValueError(f"source config must have receivers retrain and people, has {sorted(receivers)}")
    retrain = receivers["retrain"]["webhook_configs"][0]
    retrain["url"] = monitor_webhook_url
    retrain.setdefault("http_config", {})["authorization"] = {
        "type": "Bearer", "credentials_file": str(Path(token_file).resolve())}
    people = receivers["people"]
    people.pop("webhook_configs", None)
    people.pop("slack_configs", None)
    if people_webhook_url and people_webhook_kind == "slack":
        people["slack_configs"] = [{"api_url": people_webhook_url, "send_resolved": True}]
    elif people_webhook_url:
        people["webhook_configs"] = [{"url": people_webhook_url, "send_resolved": True}]
    return _dump(cfg, "rendered by driftwatch.stack_config from prometheus/alertmanager.yml")


def render_rules(
    src_dir: Path,
    dst_dir: Path,
    *,
    for_scale: float = 1.0,
    min_for: str = "0s",
    runbook_base_url: str | None = None,
) -> list[Path]:
    """Copy every ``*.yml`` rule file of ``src_dir`` to ``dst_dir``, scaled.

    Each alert's ``for:`` is multiplied by ``for_scale`` (not below
    ``min_for``); range windows in expressions (``[5m]``) and thresholds are
    left alone. ``runbook_base_url`` (e.g. the repository's web URL) is
    prefixed to relative ``runbook_url`` annotations. Returns the written paths.
    """
    src, dst = Path(src_dir), Path(dst_dir)
    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(src.glob("*.yml")):
        data = _load(path)
        for group in data.get("groups", []):
            for rule in group.get("rules", []):
                if "for" in rule:
                    rule["for"] = scale_duration(rule["for"], for_scale, min_for)
                ann = rule.get("annotations", {})
                url = ann.get("runbook_url")
                if runbook_base_url and url and "://" not in url:
                    ann["runbook_url"] = runbook_base_url.rstrip("/") + "/" + url.lstrip("/")
        out = dst / path.name
        out.write_text(_dump(data, f"rendered by driftwatch.stack_config from prometheus/rules/{path.name}"
                             f" (for_scale={for_scale})"), encoding="utf-8")
        written.append(out)
    if not written:
        raise FileNotFoundError(f"no *.yml rule files in {src}")
    return written


def write_token_file(path: Path, token: str) -> Path:
    """Write the bearer token Alertmanager sends to ``POST /alerts`` (mode 0600)."""
    if not token or token.strip() != token:
        raise ValueError("alert token must be non-empty without surrounding whitespace")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token)
    os.chmod(path, 0o600)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m driftwatch.stack_config {rules,prometheus,alertmanager} ...``

    Used by the compose stack to render the Alertmanager config from the
    environment, and by hand.
    """
    p = argparse.ArgumentParser(prog="python -m driftwatch.stack_config", description=main.__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("rules", help="copy rule files with scaled for: durations")
    r.add_argument("--src", type=Path, default=None)
    r.add_argument("--dst", type=Path, required=True)
    r.add_argument("--for-scale", type=float, default=1.0)
    r.add_argument("--min-for", default="0s")
    r.add_argument("--runbook-base-url", default=None)

    pr = sub.add_parser("prometheus", help="render prometheus.yml")
    pr.add_argument("--out", type=Path, required=True)
    pr.add_argument("--service-target", action="append", required=True)
    pr.add_argument("--monitor-target", required=True)
    pr.add_argument("--alertmanager-target", required=True)
    pr.add_argument("--prometheus-target", default=None)
    pr.add_argument("--rules-dir", type=Path, required=True)
    pr.add_argument("--scrape-interval", default="15s")
    pr.add_argument("--evaluation-interval", default="15s")
    pr.add_argument("--source", type=Path, default=None)

    am = sub.add_parser("alertmanager", help="render alertmanager.yml (and the token file)")
    am.add_argument("--out", type=Path, required=True)
    am.add_argument("--monitor-webhook-url", required=True)
    am.add_argument("--token-file", type=Path, required=True)
    am.add_argument("--token-env", default=None,
                    help="write the token file from this environment variable (required non-empty)")
    am.add_argument("--people-webhook-url", default=None)
    am.add_argument("--people-webhook-url-env", default=None,
                    help="read the people webhook URL from this variable (empty: none)")
    am.add_argument("--people-webhook-kind", choices=("webhook", "slack"), default="webhook")
    am.add_argument("--owner", default=None, metavar="UID:GID",
                    help="chown the token file and config (Alertmanager's image runs as 65534)")
    am.add_argument("--source", type=Path, default=None)

    a = p.parse_args(argv)
    if a.cmd == "rules":
        for path in render_rules(a.src or config_dir() / "rules", a.dst, for_scale=a.for_scale,
                                 min_for=a.min_for, runbook_base_url=a.runbook_base_url):
            print(path)
        return 0
    if a.cmd == "prometheus":
        text = render_prometheus_config(
            a.service_target, a.monitor_target, a.alertmanager_target, a.rules_dir,
            a.scrape_interval, a.evaluation_interval,
            prometheus_target=a.prometheus_target, source=a.source)
    else:
        if a.token_env is not None:
            token = os.environ.get(a.token_env, "")
            if not token:
                p.error(f"environment variable {a.token_env} is empty: the monitor's /alerts needs a token")
            write_token_file(a.token_file, token)
        people = a.people_webhook_url
        if people is None and a.people_webhook_url_env:
            people = os.environ.get(a.people_webhook_url_env) or None
        text = render_alertmanager_config(
            a.monitor_webhook_url, a.token_file, people,
            people_webhook_kind=a.people_webhook_kind, source=a.source)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text, encoding="utf-8")
    if a.cmd == "alertmanager" and a.owner:
        uid, _, gid = a.owner.partition(":")
        for path in (a.out, a.token_file):
            os.chown(path, int(uid), int(gid or uid))
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
