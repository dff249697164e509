"""bench/commit_cost.py runs end to end on SQLite and writes its table (a smoke test: no timing is asserted)."""

from __future__ import annotations

from bench import commit_cost


def test_writes_one_row_per_sqlite_variant(tmp_path, monkeypatch):
    monkeypatch.setattr(commit_cost, "PREFILL", 20)
    out = tmp_path / "commit_cost.md"
    assert commit_cost.main(["--no-pg", "--rounds", "2", "--commits", "10", "--out", str(out)]) == 0
    text = out.read_text()
    for name in ("current", "with-ts-index", "checkpoint-every-5"):
        assert f"| SQLite | {name} |" in text
    assert "| SQLite | current |" in text and "| 1.00× |" in text
