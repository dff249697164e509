"""Build driftwatch's Grafana dashboards as code.

    python grafana/build.py            # write grafana/dashboards/*.json
    python grafana/build.py --check    # exit 1 if the committed JSON differs

Panels come from small functions with shared defaults; the JSON is printed
with sorted keys so that it diffs cleanly. Only metric names the code exports
are used (tests/grafana/test_dashboards.py checks it).

:func:`iter_panel_queries` gives every panel query with the variables
substituted, for running them against a real Prometheus:

>>> d = serving()
>>> queries = iter_panel_queries(d, {"model": "loans"})
>>> [e for t, e in queries if t == "Predictions by class"]
['sum by (predicted) (rate(driftwatch_predictions_total{job="driftwatch-service", model="loans"}[1m]))']
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DASHBOARD_DIR = HERE / "dashboards"
DATASOURCE_UID = "driftwatch-prometheus"  # grafana/provisioning/datasources/prometheus.yml
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
SERVICE = 'job="driftwatch-service"'
RATE = "$__rate_interval"

# Grafana's built-in variables and the values iter_panel_queries gives them.
BUILTIN_VARIABLES = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

Panel = dict[str, Any]


# --- building blocks ------------------------------------------------------------

def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> dict[str, Any]:
    """One Prometheus query of a panel (refId is set by the panel)."""
    t: dict[str, Any] = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend or "__auto",
                         "range": not instant, "instant": instant}
    if table:
        t["format"] = "table"
    return t


def _panel(kind: str, title: str, targets: Iterable[dict], *, description: str = "", w: int = 12, h: int = 8,
           unit: str = "short", minimum: float | None = None, maximum: float | None = None,
           thresholds: Iterable[tuple[float, str]] = (), base_color: str = "green", options: dict | None = None,
           custom: dict | None = None, overrides: list | None = None, transformations: list | None = None) -> Panel:
    targets = [dict(t, refId=chr(ord("A") + i)) for i, t in enumerate(targets)]
    steps = [{"color": base_color, "value": None}] + [{"color": c, "value": v} for v, c in thresholds]
    defaults: dict[str, Any] = {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if custom:
        defaults["custom"] = custom
    p: Panel = {"type": kind, "title": title, "description": description, "datasource": DATASOURCE,
                "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
                "options": options or {}, "gridPos": {"w": w, "h": h}}
    if transformations:
        p["transformations"] = transformations
    return p


def timeseries(title: str, *targets: dict, thresholds_as_lines: bool = False, **kw: Any) -> Panel:
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
              "spanNulls": False, "thresholdsStyle": {"mode": "line" if thresholds_as_lines else "off"}}
    options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
               "tooltip": {"mode": "multi", "sort": "desc"}}
    return _panel("timeseries", title, targets, custom=custom, options=options, **kw)


def stat(title: str, *targets: dict, text_mode: str = "value", **kw: Any) -> Panel:
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "colorMode": "value" if text_mode == "value" else "none", "graphMode": "none",
               "textMode": text_mode, "justifyMode": "auto", "orientation": "auto"}
    return _panel("stat", title, targets, options=options, **kw)


def table(title: str, *targets: dict, **kw: Any) -> Panel:
    return _panel("table", title, targets, options={"showHeader": True, "cellHeight": "sm"},
                  transformations=[{"id": "merge", "options": {}},
                                   {"id": "organize", "options": {"excludeByName": {"Time": True}}}], **kw)


def state_timeline(title: str, *targets: dict, **kw: Any) -> Panel:
    options = {"mergeValues": True, "showValue": "never", "rowHeight": 0.8,
               "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False}}
    return _panel("state-timeline", title, targets, options=options, **kw)


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def dashed(regex: str) -> dict[str, Any]:
    """Field override: series whose name matches ``regex`` drawn dashed (baselines, thresholds)."""
    return {"matcher": {"id": "byRegexp", "options": regex},
            "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}


def layout(panels: list[Panel]) -> list[Panel]:
    """Give panels ids and grid positions: left to right, wrapping at width 24."""
    x = y = row_h = 0
    out = []
    for i, p in enumerate(panels, start=1):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if p["type"] == "row" or x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        p = dict(p, id=i, gridPos={"h": h, "w": w, "x": x, "y": y})
        out.append(p)
        x, row_h = x + w, max(row_h, h)
        if p["type"] == "row":
            x, y, row_h = 0, y + h, 0
    return out


def query_variable(name: str, query: str, label: str) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": DATASOURCE,
            "definition": query, "query": {"query": query, "refId": f"{name}-variable"},
            "refresh": 2, "sort": 1, "multi": False, "includeAll": False, "current": {},
            "hide": 0, "options": [], "regex": "", "skipUrlSync": False}


MODEL_VARIABLE = query_variable("model", "label_values(driftwatch_model_info, model)", "Model")


def annotation(name: str, expr: str, title: str, color: str, tags: str = "") -> dict[str, Any]:
    return {"name": name, "datasource": DATASOURCE, "enable": True, "hide": False, "expr": expr,
            "iconColor": color, "step": "30s", "titleFormat": title, "tagKeys": tags,
            "textFormat": "", "useValueForTime": False}


def dashboard(uid: str, title: str, description: str, panels: list[Panel], variables: list[dict],
              annotations: list[dict] = ()) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["driftwatch"],
        "editable": False, "graphTooltip": 1, "schemaVersion": 39, "version": 1,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "10s", "timezone": "utc",
        "templating": {"list": variables},
        "annotations": {"list": list(annotations)},
        "links": [{"type": "dashboards", "tags": ["driftwatch"], "asDropdown": False, "title": "driftwatch",
                   "includeVars": True, "keepTime": True}],
        "panels": layout(panels),
    }


# --- the dashboards ---------------------------------------------------------------

def _quantile(q: float) -> dict:
    return target(f'histogram_quantile({q}, sum by (le) (rate(bentoml_service_request_duration_seconds_bucket'
                  f'{{{SERVICE}, endpoint="/predict"}}[{RATE}])))', f"p{round(q * 100)}")


def serving() -> dict[str, Any]:
    api = f'{SERVICE}, endpoint!~"/metrics|/livez|/readyz|/healthz"'
    panels = [
        row("Traffic"),
        timeseries("Request rate by endpoint",
                   target(f"sum by (endpoint) (rate(bentoml_service_request_total{{{SERVICE}}}[{RATE}]))",
                          "{{endpoint}}"), unit="reqps", minimum=0),
        timeseries("/predict latency", _quantile(0.5), _quantile(0.95), _quantile(0.99),
                   unit="s", minimum=0, thresholds=[(0.5, "red")], thresholds_as_lines=True,
                   description="SLO: p99 under 500 ms (alert DriftwatchLatencyP99High)."),
        timeseries("5xx share of API requests",
                   target(f'(sum(rate(bentoml_service_request_total{{{api}, http_response_code=~"5.."}}[{RATE}]))'
                          f" or vector(0)) / sum(rate(bentoml_service_request_total{{{api}}}[{RATE}]))", "5xx share"),
                   unit="percentunit", minimum=0, thresholds=[(0.01, "orange"), (0.05, "red")],
                   thresholds_as_lines=True, w=8),
        timeseries("Rejected requests by reason",
                   target(f"sum by (reason) (rate(driftwatch_requests_rejected_total{{{SERVICE}}}[{RATE}]))",
                          "{{reason}}"), unit="reqps", minimum=0, w=8,
                   description="Client mistakes answered 4xx; never logged as predictions."),
        timeseries("Requests in progress",
                   target(f"sum(bentoml_service_request_in_progress{{{SERVICE}}})", "in progress"),
                   minimum=0, w=8),
        row("Model"),
        stat("Model version in service",
             target(f'max by (version) (driftwatch_model_info{{{SERVICE}, model="$model"}})', "{{version}}"),
             text_mode="name", w=6, h=6),
        timeseries("Predictions by model version",
                   target(f'sum by (version) (rate(driftwatch_predictions_total{{{SERVICE}, model="$model"}}[{RATE}]))',
                          "{{version}}"), unit="reqps", minimum=0, w=9, h=6,
                   description="Predicted instances per second; a hot swap shows as a hand-over between versions."),
        timeseries("Predictions by class",
                   target(f'sum by (predicted) (rate(driftwatch_predictions_total{{{SERVICE}, model="$model"}}[{RATE}]))',
                          "{{predicted}}"), unit="reqps", minimum=0, w=9, h=6),
        row("Request log and feedback"),
        timeseries("Request-log rows committed",
                   target(f"sum(rate(driftwatch_request_log_rows_total{{{SERVICE}}}[{RATE}]))", "rows/s"),
                   unit="short", minimum=0, w=6),
        timeseries("Spool backlog",
                   target(f"sum by (instance) (driftwatch_request_log_spooled_rows{{{SERVICE}}})", "{{instance}}"),
                   minimum=0, w=6, thresholds=[(1, "orange")],
                   description="Rows waiting in the local spool while the store is unreachable."),
        timeseries("Feedback labels",
                   target(f"sum(rate(driftwatch_feedback_labels_total{{{SERVICE}}}[{RATE}]))", "labels/s"),
                   target(f"sum(rate(driftwatch_feedback_conflicts_total{{{SERVICE}}}[{RATE}]))", "conflicts/s"),
                   minimum=0, w=6),
        timeseries("Instances per model call",
                   target(f"sum(rate(driftwatch_batch_size_sum{{{SERVICE}}}[{RATE}])) / "
                          f"sum(rate(driftwatch_batch_size_count{{{SERVICE}}}[{RATE}]))", "mean"),
                   minimum=0, w=6,
                   description="Adaptive batching: concurrent requests share one model call (up to "
                               "DRIFTWATCH_BATCH_MAX_SIZE instances)."),
        stat("Targets up", target('up{job=~"driftwatch-service|driftwatch-monitor"}', "{{job}} {{instance}}"),
             base_color="red", thresholds=[(1, "green")], w=24, h=4),
    ]
    return dashboard("driftwatch-serving", "driftwatch · Serving",
                     "The prediction service: traffic, latency, errors, rejections, model versions, request log.",
                     panels, [MODEL_VARIABLE])


def model_health() -> dict[str, Any]:
    m = 'model="$model"'
    feature_variable = query_variable(
        "feature", 'label_values(driftwatch_feature_drift_score{model="$model"}, feature)', "Feature")
    panels = [
        row("Data drift"),
        timeseries("Dataset drift share",
                   target(f"driftwatch_dataset_drift_share{{{m}}}", "drifted share of features"),
                   target(f"driftwatch_dataset_drift{{{m}}}", "dataset drift flag"),
                   unit="percentunit", minimum=0, maximum=1, w=8,
                   description="Share of features whose calibrated test flags drift; the flag is the dataset decision."),
        timeseries("Feature drift score vs threshold: $feature",
                   target(f'driftwatch_feature_drift_score{{{m}, feature="$feature"}}', "score ({{method}})"),
                   target(f'driftwatch_feature_drift_threshold{{{m}, feature="$feature"}}', "threshold"),
                   overrides=[dashed("threshold")], w=8,
                   description="Calibrated per window size against the reference (false-alarm budget)."),
        timeseries("Prediction drift",
                   target(f"driftwatch_prediction_drift_score{{{m}}}", "score"),
                   target(f"driftwatch_prediction_drifted{{{m}}}", "drifted"), w=8),
        table("Feature drift, latest window",
              target(f"driftwatch_feature_drift_score{{{m}}}", instant=True, table=True),
              target(f"driftwatch_feature_drift_threshold{{{m}}}", instant=True, table=True),
              target(f"driftwatch_feature_drifted{{{m}}}", instant=True, table=True), w=12, h=9),
        state_timeline("Drifted features",
                       target(f"driftwatch_feature_drifted{{{m}}}", "{{feature}}"),
                       thresholds=[(1, "red")], w=12, h=9),
        row("Data quality"),
        timeseries("Missing share by feature", target(f"driftwatch_missing_share{{{m}}}", "{{feature}}"),
                   unit="percentunit", minimum=0, thresholds=[(0.1, "red")], thresholds_as_lines=True, w=8),
        timeseries("Out-of-range share by feature", target(f"driftwatch_out_of_range_share{{{m}}}", "{{feature}}"),
                   unit="percentunit", minimum=0, thresholds=[(0.05, "red")], thresholds_as_lines=True, w=8),
        timeseries("Unseen category share by feature",
                   target(f"driftwatch_unseen_category_share{{{m}}}", "{{feature}}"),
                   unit="percentunit", minimum=0, thresholds=[(0.05, "red")], thresholds_as_lines=True, w=8),
        row("Performance"),
        timeseries("Performance vs baseline (labeled rows)",
                   target(f"driftwatch_model_performance{{{m}}}", "{{metric}}"),
                   target(f"driftwatch_model_performance_baseline{{{m}}}", "{{metric}} baseline"),
                   overrides=[dashed("baseline")], w=8),
        timeseries("Estimated performance vs baseline (no labels)",
                   target(f"driftwatch_estimated_performance{{{m}}}", "estimated {{metric}}"),
                   target(f"driftwatch_model_performance_baseline{{{m}}} and on (metric) "
                          f"driftwatch_estimated_performance{{{m}}}", "{{metric}} baseline"),
                   overrides=[dashed("baseline")], w=8),
        state_timeline("Concept drift", target(f"driftwatch_concept_drift{{{m}}}", "concept drift"),
                       thresholds=[(1, "red")], w=8),
        timeseries("Labeled share of the window", target(f"driftwatch_labeled_share{{{m}}}", "labeled"),
                   unit="percentunit", minimum=0, maximum=1, w=8),
        timeseries("Label delay (median)", target(f"driftwatch_label_delay_seconds{{{m}}}", "median delay"),
                   unit="s", minimum=0, w=8),
        timeseries("Window rows", target(f"driftwatch_window_rows{{{m}}}", "rows"), minimum=0, w=8),
        row("Lifecycle and alerts"),
        stat("Model version", target(f"max by (version) (driftwatch_model_info{{{m}}})", "{{version}}"),
             text_mode="name", w=4, h=6),
        stat("Retrains by outcome", target(f"sum by (outcome) (driftwatch_retrains_total{{{m}}})", "{{outcome}}"),
             w=8, h=6),
        stat("Time since the monitor's last window",
             target("max(time() - driftwatch_monitor_last_run_timestamp_seconds)", "age"),
             unit="s", thresholds=[(600, "orange"), (900, "red")], w=4, h=6),
        table("Alerts firing",
              target('sum by (alertname, severity, model, feature, metric) (ALERTS{alertstate="firing", '
                     'model=~"$model|"})', instant=True, table=True), w=8, h=6,
              description="Alerts of this model and alerts without a model (service, monitor)."),
        timeseries("Alerts firing over time",
                   target('count by (alertname, severity) (ALERTS{alertstate="firing", model=~"$model|"})',
                          "{{alertname}} ({{severity}})"), minimum=0, w=24, h=6),
    ]
    annotations = [
        annotation("Retrains", f"sum by (outcome) (increase(driftwatch_retrains_total{{{m}}}[1m])) > 0",
                   "retrain: {{outcome}}", "orange", "outcome"),
        annotation("Promotions", f"count by (version) (driftwatch_model_info{{{m}}} unless "
                                 f"driftwatch_model_info{{{m}}} offset 1m)", "serving version {{version}}",
                   "green", "version"),
    ]
    return dashboard("driftwatch-model-health", "driftwatch · Model health",
                     "Drift, data quality, performance and the retraining loop of one model.",
                     panels, [MODEL_VARIABLE, feature_variable], annotations)


DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {"serving.json": serving, "model-health.json": model_health}


# --- output and queries -----------------------------------------------------------

def render(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def substitute(expr: str, variables: dict[str, str]) -> str:
    """Replace ``$name`` / ``${name}`` / ``[[name]]``; unknown variables raise KeyError.

    >>> substitute('x{model="$model"}[$__rate_interval]', {"model": "m"})
    'x{model="m"}[1m]'
    """
    values = {**BUILTIN_VARIABLES, **variables}

    def repl(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise KeyError(f"no value for dashboard variable ${name} in {expr!r}")
        return str(values[name])

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", repl, expr)


def iter_panel_queries(dashboard: dict[str, Any], variables: dict[str, str],
                       include_annotations: bool = False) -> list[tuple[str, str]]:
    """``[(panel title, PromQL)]`` of every panel target, variables substituted.

    ``variables`` must give every dashboard variable (``model``, and
    ``feature`` for the model-health dashboard); Grafana's ``$__rate_interval``,
    ``$__interval`` and ``$__range`` default to BUILTIN_VARIABLES. Titles are
    substituted too. With ``include_annotations``, annotation queries follow as
    ``("annotation: NAME", expr)``.
    """
    out = []
    for panel in dashboard["panels"]:
        for t in panel.get("targets", []):
            out.append((substitute(panel["title"], variables), substitute(t["expr"], variables)))
    if include_annotations:
        for a in dashboard.get("annotations", {}).get("list", []):
            if "expr" in a:
                out.append((f"annotation: {a['name']}", substitute(a["expr"], variables)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build driftwatch's Grafana dashboards.")
    p.add_argument("--check", action="store_true", help="exit 1 if the files differ from what the code builds")
    p.add_argument("--dir", type=Path, default=DASHBOARD_DIR, help="dashboards folder (default: %(default)s)")
    a = p.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path = a.dir / name
        text = render(build())
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if a.check:
            stale.append(path)
        else:
            a.dir.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run python grafana/build.py): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
