"""The wrk report parser of `make bench`, on outputs captured from real wrk 4 runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.wrk import WrkOutputError, WrkResult, combine, parse_wrk_output, write_post_script

# POST to python's http.server (no POST handler: every answer is 501) with one timeout.
WITH_ERRORS = """\
Running 3s test @ http://127.0.0.1:38123/predict
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    38.83ms  109.13ms 861.33ms   91.45%
    Req/Sec   494.90    476.81     1.67k    58.54%
  Latency Distribution
     50%    5.14ms
     75%    8.35ms
     90%  104.31ms
     99%  578.54ms
  2078 requests in 3.01s, 1.10MB read
  Socket errors: connect 0, read 0, write 0, timeout 1
  Non-2xx or 3xx responses: 2078
Requests/sec:    690.35
Transfer/sec:    374.23KB
"""

# GET of a small file: all 200, so wrk prints neither error line.
CLEAN = """\
Running 2s test @ http://127.0.0.1:38124/pid
  2 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    20.23ms   54.14ms 312.25ms   91.45%
    Req/Sec   406.41    238.05     1.02k    72.97%
  Latency Distribution
     50%    1.53ms
     75%    5.44ms
     90%   50.35ms
     99%  268.81ms
  1501 requests in 2.00s, 300.69KB read
Requests/sec:    748.73
Transfer/sec:    149.99KB
"""


def test_parses_rate_percentiles_and_errors() -> None:
    result = parse_wrk_output(WITH_ERRORS)
    assert result.requests == 2078
    assert result.requests_per_second == pytest.approx(690.35)
    assert result.p50_ms == pytest.approx(5.14)
    assert result.p99_ms == pytest.approx(578.54)
    assert (result.socket_errors, result.non_2xx, result.errors) == (1, 2078, 2079)


def test_clean_run_has_no_errors() -> None:
    result = parse_wrk_output(CLEAN)
    assert (result.requests, result.errors) == (1501, 0)
    assert result.requests_per_second == pytest.approx(748.73)
    assert result.p50_ms == pytest.approx(1.53)
    assert result.p99_ms == pytest.approx(268.81)


@pytest.mark.parametrize(
    ("line", "ms"), [("812.00us", 0.812), ("3.20ms", 3.2), ("1.50s", 1500.0), ("1.00m", 60_000.0)]
)
def test_latency_units_become_milliseconds(line: str, ms: float) -> None:
    assert parse_wrk_output(CLEAN.replace("1.53ms", line)).p50_ms == pytest.approx(ms)


def test_output_without_latency_distribution_is_refused() -> None:
    without = "\n".join(line for line in CLEAN.splitlines() if "%" not in line or "Stdev" in line)
    with pytest.raises(WrkOutputError, match="--latency"):
        parse_wrk_output(without)


def test_post_script_keeps_json_with_closing_brackets(tmp_path: Path) -> None:
    body = {"dataframe_split": {"columns": ["a"], "data": [[5.1]]}}
    script = write_post_script(tmp_path / "post.lua", body).read_text()
    assert 'wrk.method = "POST"' in script
    assert 'wrk.body = [=[{"dataframe_split": {"columns": ["a"], "data": [[5.1]]}}]=]' in script


def test_rounds_combine_into_counts_mean_rate_and_median_percentiles() -> None:
    rounds = [
        WrkResult(30_000, 2000.0, 5.0, 9.0, 0, 0),
        WrkResult(36_000, 2400.0, 4.0, 8.0, 1, 2),
        WrkResult(33_000, 2200.0, 6.0, 30.0, 0, 0),  # one disturbed round moves p99 least
    ]
    combined = combine(rounds)
    assert combined == WrkResult(99_000, 2200.0, 5.0, 9.0, 1, 2)
    assert combined.errors == 3


def test_no_rounds_is_an_error() -> None:
    with pytest.raises(ValueError, match="no wrk rounds"):
        combine([])
