"""Smoke run of the performance harness (``python -m benchmarks``) at tiny sizes.

Checks only that every comparison still computes the same answers on both sides and that every
section runs end to end (child processes included), so the harness cannot rot.  Times are not
checked: the figures live in docs/performance.md.
"""

from __future__ import annotations

import pytest

from benchmarks import e2e, growth, join, parse, query
from benchmarks.__main__ import main
from benchmarks.common import Report, Stats, fit_exponent, nlogn_exponent
from benchmarks.data import scale_world


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def world(base):
    w, _ = scale_world(base, n_writes=2_000, n_sessions=100, records_per_file=600)
    return w


def test_join_core_and_duckdb_agree_and_tables_are_deterministic():
    writes, sessions = join.make_tables(3_000, 300, multi_share=0.5)
    again, _ = join.make_tables(3_000, 300, multi_share=0.5)
    assert writes.equals(again)
    core = join.core_attribute(writes, sessions)
    duck = join.duckdb_attribute(writes, sessions)
    assert join.same_answers(core, duck)
    statuses = set(core.column("status").to_pylist())
    assert {"attributed", "ambiguous"} <= statuses  # the data exercises the hard cases
    # and the check would see a difference
    broken = core.set_column(core.schema.get_field_index("session_id"), "session_id",
                             core.column("session_id").fill_null("x"))
    assert not join.same_answers(broken, duck)


def test_join_child_process_and_growth():
    rep = Report()
    (res,) = join.run(rep, [(2_000, 200)], runs=1, refs=True)
    assert res["same_answers"] and res["core_extra_mb"] >= 0
    assert set(res["refs"]) == {"pandas merge_asof", "polars join_asof"}
    bigger = res | {"writes": 20_000, "core": {"runs": [t * 9 for t in res["core"]["runs"]]}}
    g = growth.join_growth(rep, [res, bigger])
    assert abs(g["exponent"] - 0.954) < 0.01  # 9x the time for 10x the writes
    assert rep.rows[-2].met  # below n log n


def test_parse_against_the_limit(world):
    rep = Report()
    out = parse.run(rep, world, runs=1, max_variant_files=2)
    assert out["correct"] and out["fast_path_share"] == 1.0
    assert rep.rows[0].section == "parse"


def test_single_file_memory(base):
    rep = Report()
    (res,) = growth.file_memory(rep, base, sizes=(500,))
    assert res["writes"] > 0 and res["ingest_extra_mb"] >= 0 and res["parse_extra_mb"] >= 0


def test_query_pruned_and_full_scan_agree(base):
    rep = Report()
    out = query.run(rep, base, 20_000, 2_000, runs=1, days=3)
    answers = [v for k, v in out.items() if k != "lake"]
    assert len(answers) == 3 and all(v["same"] for v in answers)
    assert answers[0]["rows"] >= 1  # the object was found
    assert query._full_scan("WHERE at >= ? AND dt IN (?, ?)") == \
        "WHERE (at >= ? OR random() < 0) AND (dt IN (?, ?) OR random() < 0)"


def test_end_to_end_ingest_of_a_tiny_day(base, world):
    rep = Report()
    (r,) = e2e.run(rep, base, [(2_000, 100)])
    assert r["written"] == r["n_records"] and r["activity_rows"] == r["n_writes"]
    assert set(r["statuses"]) <= {"attributed", "ambiguous"}
    assert {"read", "parse", "write", "attribute"} <= set(r["stages"])
    assert rep.rows[-1].met


def test_statistics_and_cli_arguments(capsys):
    s = Stats([3.0, 1.0, 2.0])
    assert (s.min, s.median, s.max) == (1.0, 2.0, 3.0)
    assert abs(fit_exponent([1e5, 1e6], [1.0, 10.0]) - 1.0) < 1e-9
    assert 1.0 < nlogn_exponent([1e5, 1e6, 1e7]) < 1.1
    with pytest.raises(SystemExit):
        main(["--only", "nothing"])
