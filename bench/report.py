"""Turning benchmark runs into the results table (markdown + JSON).

A *run* is one wrk run of one variant in one round. A *target* compares two
variants: its ratio is computed per round (the two runs of a pair ran
back to back in the same round) and the median of those ratios is what is
judged. A *check* is an exact condition over runs (e.g. rows logged == 200
responses).
"""

from __future__ import annotations

import json
import operator
import statistics
from pathlib import Path
from typing import Any

OPS = {">=": operator.ge, "<=": operator.le}


# a per-round ratio is marked (*) when the hypervisor took more than this share of the server's CPU in either run
STEAL_MARK = 5.0


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs: list[dict[str, Any]], variants: dict[str, dict[str, Any]],
              targets: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """Medians per variant, per-round ratios and verdicts per target.

    ``runs``: dicts with ``variant``, ``round``, ``rps``, ``p50_ms``, ``p99_ms``,
    ``ok``, ``non2xx``, and for logging variants ``rows``, ``distinct_ids``,
    ``expected_rows``. ``targets``: dicts with ``name``, ``kind`` ("ratio" or
    "check"); ratios have ``a``, ``b``, ``metric`` (``rps`` or ``p99_ms``),
    ``op`` and ``threshold``; the ratio is a/b. Checks have ``variants`` and
    ``check`` (``rows_match`` or ``no_errors``).
    """
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_variant.setdefault(r["variant"], []).append(r)
    vsum: dict[str, Any] = {}
    for name, info in variants.items():
        rs = by_variant.get(name, [])
        vsum[name] = {**info, "runs": len(rs),
                      "rps": median([r["rps"] for r in rs]),
                      "p50_ms": median([r["p50_ms"] for r in rs]),
                      "p99_ms": median([r["p99_ms"] for r in rs]),
                      "cpu_ms": median([r.get("cpu_ms") for r in rs]),
                      "steal_pct": median([r.get("steal_pct") for r in rs]),
                      "per_call": median([r.get("per_call") for r in rs]),
                      "commit_ms": median([r.get("commit_ms") for r in rs]),
                      "ok": sum(r.get("ok") or 0 for r in rs),
                      "non2xx": sum(r.get("non2xx") or 0 for r in rs),
                      "socket_errors": sum(sum((r.get("socket_errors") or {}).values()) for r in rs),
                      "rows": sum(r["rows"] for r in rs) if rs and all(r.get("rows") is not None for r in rs) else None,
                      "expected_rows": sum(r.get("expected_rows") or 0 for r in rs) if info.get("logs") else None,
                      "distinct_ids": sum(r.get("distinct_ids") or 0 for r in rs) if info.get("logs") else None}
    out_targets = []
    for t in targets:
        t = dict(t)
        if t["kind"] == "ratio":
            a = {r["round"]: r for r in by_variant.get(t["a"], [])}
            b = {r["round"]: r for r in by_variant.get(t["b"], [])}
            ratios, stolen = [], []
            for rnd in sorted(set(a) & set(b)):
                va, vb = a[rnd].get(t["metric"]), b[rnd].get(t["metric"])
                ratios.append(va / vb if va is not None and vb else None)
                stolen.append(max(a[rnd].get("steal_pct") or 0.0, b[rnd].get("steal_pct") or 0.0) > STEAL_MARK)
            t["ratios"], t["stolen"] = ratios, stolen
            clean = [r for r, st in zip(ratios, stolen) if not st]
            # rounds the host disturbed (steal) are left out of the verdict while at least half the rounds are clean
            t["rounds_used"] = "clean" if clean and 2 * len(clean) >= len(ratios) and len(clean) < len(ratios) else "all"
            t["value"] = median(clean if t["rounds_used"] == "clean" else ratios)
            t["met"] = None if t["op"] is None else (
                t["value"] is not None and OPS[t["op"]](t["value"], t["threshold"]))
        else:
            rs = [r for v in t["variants"] for r in by_variant.get(v, [])]
            if t["check"] == "rows_match":
                bad = [f"{r['variant']}#{r['round']}: {r.get('rows')} rows, {r.get('distinct_ids')} ids, "
                       f"{r.get('expected_rows')} expected" for r in rs
                       if not (r.get("rows") == r.get("expected_rows") == r.get("distinct_ids"))
                       or r.get("sent") != r.get("received")]
            elif t["check"] == "no_errors":
                bad = [f"{r['variant']}#{r['round']}: {r.get('non2xx')} non-2xx, {r.get('socket_errors')}"
                       for r in rs if r.get("non2xx") or any((r.get("socket_errors") or {}).values())]
            else:
                raise ValueError(f"unknown check {t['check']!r}")
            t["failures"] = bad
            t["value"] = f"{len(rs) - len(bad)}/{len(rs)} runs"
            t["met"] = bool(rs) and not bad
        out_targets.append(t)
    return {"meta": meta, "variants": vsum, "targets": out_targets, "runs": runs}


def _f(v: Any, fmt: str = "{:.0f}") -> str:
    return "–" if v is None else fmt.format(v)


def render_markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [f"# Serving benchmark ({meta.get('date', '')})", ""]
    if meta.get("command"):
        lines += [f"Command: `{meta['command']}`", ""]
    facts = [f"{k}: {meta[k]}" for k in ("host", "setup", "load", "pinning") if meta.get(k)]
    lines += [f"- {f}" for f in facts] + ([""] if facts else [])
    lines += ["## Targets (median of per-round ratios; * = the host took > 5 % of the server's CPU in that round)", "",
              "| target | ratio | goal | per round | met |", "|---|---|---|---|---|"]
    for t in result["targets"]:
        if t["kind"] == "ratio":
            per = ", ".join(_f(r, "{:.2f}") + ("*" if st else "")
                            for r, st in zip(t["ratios"], t.get("stolen") or [False] * len(t["ratios"])))
            goal = "(info)" if t["op"] is None else f"{t['op']} {t['threshold']}×"
            verdict = "–" if t["met"] is None else "met" if t["met"] else "**not met**"
            used = " (unmarked rounds)" if t.get("rounds_used") == "clean" else ""
            lines.append(f"| {t['name']} | {_f(t['value'], '{:.2f}')}×{used} | {goal} | {per} | {verdict} |")
        else:
            why = "; ".join(t["failures"][:3])
            lines.append(f"| {t['name']} | {t['value']} | all runs | {why} | "
                         f"{'met' if t['met'] else '**not met**'} |")
    lines += ["", "## Variants (medians over rounds; totals for counts)", "",
              "| variant | what | store | inst/req | req/s | p50 ms | p99 ms | server CPU ms/req | inst/model call "
              "| commit ms | host steal % | 2xx | non-2xx | rows logged | rows expected |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, v in result["variants"].items():
        lines.append(f"| {name} | {v.get('description', '')} | {v.get('store', '')} | {v.get('instances', 1)} | "
                     f"{_f(v['rps'])} | {_f(v['p50_ms'], '{:.1f}')} | {_f(v['p99_ms'], '{:.1f}')} | "
                     f"{_f(v.get('cpu_ms'), '{:.2f}')} | {_f(v.get('per_call'), '{:.1f}')} | "
                     f"{_f(v.get('commit_ms'), '{:.2f}')} | {_f(v.get('steal_pct'), '{:.1f}')} | {v['ok']} | "
                     f"{v['non2xx']} | {_f(v['rows'], '{}')} | {_f(v['expected_rows'], '{}')} |")
    if result.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(lines) + "\n"


def write_results(result: dict[str, Any], md_path: str | Path, json_path: str | Path) -> None:
    md_path, json_path = Path(md_path), Path(json_path)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(render_markdown(result))
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
