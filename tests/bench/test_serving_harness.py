"""The serving benchmark's own plumbing: parsing wrk's output and writing the results table.

No timing is asserted here (or anywhere in the tests): these only check that
``bench/serving.py`` reads wrk correctly and reports what it measured.
"""

from __future__ import annotations

import json

import pytest

from bench.report import render_markdown, summarize, write_results
from bench.wrkload import lua_script, parse_wrk

WRK_OUTPUT = """\
Running 12s test @ http://127.0.0.1:3000
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.57ms    4.21ms  61.03ms   89.55%
    Req/Sec     1.27k   120.33     1.52k    71.00%
  Latency Distribution
     50%    9.81ms
     75%   11.02ms
     90%   13.60ms
     99%   28.70ms
  12741 requests in 12.00s, 3.66MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   1061.66
Transfer/sec:    312.55KB
BENCH_JSON {"sent":12741,"received":12741,"ok":12738,"non2xx":3,"elapsed_s":10.012345,\
"latency_us":{"p50":9810,"p90":13600,"p99":28700,"p999":55000,"max":61030,"mean":10570.2},\
"errors":{"connect":0,"read":0,"write":0,"timeout":0}}
"""


def test_parse_wrk_prefers_the_script_counts():
    r = parse_wrk(WRK_OUTPUT)
    assert r["rps"] == pytest.approx(12741 / 10.012345)  # responses over the measured window, not wrk's 12 s
    assert (r["p50_ms"], r["p90_ms"], r["p99_ms"], r["max_ms"]) == (9.81, 13.6, 28.7, 61.03)
    assert (r["sent"], r["received"], r["ok"], r["non2xx"]) == (12741, 12741, 12738, 3)
    assert r["socket_errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    wrk = r["wrk"]
    assert wrk["requests_per_s"] == 1061.66 and wrk["requests"] == 12741 and wrk["duration_s"] == 12.0
    assert wrk["latency_ms"] == {"50": 9.81, "75": 11.02, "90": 13.6, "99": 28.7}
    assert wrk["non2xx_or_3xx"] == 3


def test_parse_plain_wrk_output_and_units():
    text = """\
  Latency Distribution
     50%  850.00us
     75%    1.20ms
     90%    2.00s
     99%    1.50m
  100 requests in 1.00m, 10.00KB read
  Socket errors: connect 0, read 2, write 0, timeout 5
Requests/sec:     99.50
"""
    r = parse_wrk(text)
    assert r["rps"] == 99.5 and r["received"] == 100
    assert r["p50_ms"] == pytest.approx(0.85)
    assert r["p90_ms"] == 2000.0 and r["p99_ms"] == 90000.0
    assert r["non2xx"] == 0
    assert r["socket_errors"] == {"connect": 0, "read": 2, "write": 0, "timeout": 5}
    assert r["wrk"]["duration_s"] == 60.0


def test_parse_rejects_output_without_results():
    with pytest.raises(ValueError):
        parse_wrk("unable to connect to 127.0.0.1:3000 Connection refused\n")


def test_lua_script_embeds_body_path_and_duration():
    body = json.dumps({"instances": [{"a": 1, "b": "x"}]})
    script = lua_script(body, "/predict", 10)
    assert f"[==[{body}]==]" in script and '"/predict"' in script and "DURATION = 10.0" in script
    with pytest.raises(ValueError):
        lua_script('{"a": "]==]"}', "/predict", 1)


def _run(variant, rnd, rps, p99, **kw):
    return {"variant": variant, "round": rnd, "rps": rps, "p50_ms": p99 / 2, "p99_ms": p99, "ok": 100, "non2xx": 0,
            "sent": 100, "received": 100, "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
            "cpu_ms": 1.0, **kw}


@pytest.fixture
def result():
    runs = [_run("a", 0, 1000, 20, rows=100, distinct_ids=100, expected_rows=100, per_call=15.0, commit_ms=0.7),
            _run("b", 0, 500, 40),
            _run("a", 1, 900, 30, rows=99, distinct_ids=99, expected_rows=100),  # a row short: check fails
            _run("b", 1, 1000, 20, steal_pct=12.0),  # the host took CPU during this run: round 1 is marked
            _run("a", 2, 1100, 10, rows=100, distinct_ids=100, expected_rows=100),
            _run("b", 2, 1000, 20, non2xx=2)]
    variants = {"a": {"description": "candidate", "store": "sqlite", "instances": 1, "logs": True},
                "b": {"description": "baseline", "store": "sqlite", "instances": 1, "logs": False}}
    targets = [{"name": "throughput a/b", "kind": "ratio", "a": "a", "b": "b", "metric": "rps", "op": ">=",
                "threshold": 1.0},
               {"name": "p99 a/b", "kind": "ratio", "a": "a", "b": "b", "metric": "p99_ms", "op": "<=",
                "threshold": 0.5},
               {"name": "info only", "kind": "ratio", "a": "a", "b": "b", "metric": "rps", "op": None,
                "threshold": None},
               {"name": "rows match", "kind": "check", "check": "rows_match", "variants": ["a"]},
               {"name": "no errors", "kind": "check", "check": "no_errors", "variants": ["b"]}]
    return summarize(runs, variants, targets, {"date": "2026-01-01 00:00 UTC", "command": "bench/serving.py --x"})


def test_summary_takes_per_round_ratios_and_their_median(result):
    t = {t["name"]: t for t in result["targets"]}
    assert t["throughput a/b"]["ratios"] == [2.0, 0.9, 1.1] and t["throughput a/b"]["stolen"] == [False, True, False]
    # round 1 is left out of the verdict: the host took 12 % of the server's CPU during one of its runs
    assert t["throughput a/b"]["rounds_used"] == "clean"
    assert t["throughput a/b"]["value"] == 1.55 and t["throughput a/b"]["met"] is True
    assert t["p99 a/b"]["ratios"] == [0.5, 1.5, 0.5] and t["p99 a/b"]["value"] == 0.5 and t["p99 a/b"]["met"] is True
    assert t["info only"]["met"] is None
    assert t["rows match"]["met"] is False and t["rows match"]["value"] == "2/3 runs"
    assert "a#1" in t["rows match"]["failures"][0]
    assert t["no errors"]["met"] is False
    a = result["variants"]["a"]
    assert (a["rps"], a["p99_ms"], a["rows"], a["expected_rows"], a["ok"]) == (1000, 20, 299, 300, 300)
    assert result["variants"]["b"]["rows"] is None and result["variants"]["b"]["non2xx"] == 2


def test_writer_produces_markdown_and_json(tmp_path, result):
    md, js = tmp_path / "out" / "serving.md", tmp_path / "serving.json"
    write_results(result, md, js)
    text = md.read_text()
    assert text == render_markdown(result)
    assert "Command: `bench/serving.py --x`" in text
    # round 1 had steal: the verdict is the median of rounds 0 and 2
    assert "| throughput a/b | 1.55× (unmarked rounds) | >= 1.0× | 2.00, 0.90*, 1.10 | met |" in text
    assert "| p99 a/b | 0.50× (unmarked rounds) | <= 0.5× | 0.50, 1.50*, 0.50 | met |" in text
    assert "| info only | 1.55× (unmarked rounds) | (info) |" in text
    assert "| rows match | 2/3 runs | all runs |" in text and "**not met**" in text
    # instances per model call and commit time: medians over the runs that report them
    assert "| a | candidate | sqlite | 1 | 1000 | 10.0 | 20.0 | 1.00 | 15.0 | 0.70 | – | 300 | 0 | 299 | 300 |" in text
    assert "| b | baseline | sqlite | 1 | 1000 | 10.0 | 20.0 | 1.00 | – | – | 12.0 | 300 | 2 | – | – |" in text
    back = json.loads(js.read_text())
    assert back["targets"][0]["ratios"] == [2.0, 0.9, 1.1]
    assert len(back["runs"]) == 6 and back["meta"]["command"] == "bench/serving.py --x"


def test_every_round_counts_when_the_host_disturbed_most_of_them():
    runs = [_run("a", r, rps, 10, steal_pct=steal) for r, (rps, steal) in enumerate([(900, 9.0), (1000, 8.0), (1200, 0.0)])]
    runs += [_run("b", r, 1000, 10) for r in range(3)]
    variants = {v: {"description": v, "store": "sqlite", "instances": 1, "logs": False} for v in "ab"}
    target = {"name": "t", "kind": "ratio", "a": "a", "b": "b", "metric": "rps", "op": ">=", "threshold": 0.95}
    t = summarize(runs, variants, [target], {})["targets"][0]
    assert t["stolen"] == [True, True, False] and t["rounds_used"] == "all"
    assert t["value"] == 1.0 and t["met"] is True
