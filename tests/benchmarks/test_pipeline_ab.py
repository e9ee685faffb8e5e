"""Smoke run of ``python -m benchmarks.pipeline_ab`` (the A/B of two versions of the ingest core)."""

from __future__ import annotations

import json

from benchmarks import pipeline_ab


def test_pipeline_ab_runs_both_cores_and_compares_the_lakes(tmp_path, capsys):
    out = tmp_path / "ab.json"
    pipeline_ab.main(["--base-ref", "HEAD", "--sizes", "2000", "--runs", "1", "--clock", "past",
                      "--workdir", str(tmp_path / "work"), "--json", str(out)])
    (pair,) = json.loads(out.read_text())["2000"]
    assert all(pair["identical"].values()), pair["identical"]
    for who in ("base", "new"):
        # (a day ingested before its report raises no alert any more: decisions wait for the report)
        assert pair[who]["files"] >= 1 and not pair[who]["alerts"].get("open"), pair[who]
        assert sum(pair[who]["statuses"].values()) > 0
    assert "candidate/baseline" in capsys.readouterr().out
