"""Read Prometheus text exposition (``/metrics``) in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample as (name, labels, value); counters keep their ``_total`` suffix."""
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.append((s.name, dict(s.labels), float(s.value)))
    return out


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels`` (0 if none)."""
    return sum(v for n, lab, v in samples(text)
               if n == name and all(lab.get(k) == want for k, want in labels.items()))


def label_values(text: str, name: str, label: str) -> set[str]:
    return {lab[label] for n, lab, _ in samples(text) if n == name and label in lab}


def names(text: str) -> set[str]:
    return {n for n, _, _ in samples(text)}
