"""Smoke run of the replay benchmark (``python -m benchmarks.replay``) at a tiny size: the harness runs
end to end (lake built by the pipeline, replay in a child process) and its configurations do what
they say (``same`` changes nothing, ``flood`` makes every write a signal)."""

from __future__ import annotations

from benchmarks import replay as bench


def test_the_replay_benchmark_runs_and_its_configurations_mean_what_they_say(tmp_path):
    res = bench.run(tmp_path, [1_500], days=1, configs=("same", "flood"))
    by = {r["config"]: r for r in res}
    assert by["same"]["writes"] == by["flood"]["writes"] == 1_500
    assert by["same"]["changed"] == 0 and by["same"]["signals"] == 0
    assert by["flood"]["signals"] == 1_500 and by["flood"]["changed"] > 0
    assert by["flood"]["days"] == 1 and len(by["flood"]["per_day"]) == 1
