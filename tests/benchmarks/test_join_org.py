"""The organisation case of benchmarks/join.py: the same world spread over accounts that reuse one
address range must give the single-account answers, and only because of the scope."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from benchmarks import join

KEYS = ["event_id", "status", "session_id"]


def test_org_world_reuses_addresses_and_gives_the_single_account_answers():
    res = join.org_child(4_000, 400, accounts=5, runs=1)
    assert res["same_answers"] is True
    assert res["distinct_addresses"]["org"] < res["distinct_addresses"]["single"]
    assert res["statuses"].get("attributed", 0) > 0 and len(res["ratio"]["runs"]) == 1


def test_the_answers_depend_on_the_sessions_account():
    writes, sessions = join.make_tables(4_000, 400, accounts=5)
    right = join.core_attribute(writes, sessions, join.org_config(5)).select(KEYS).sort_by("event_id")
    # every session moved to the next account: same addresses, same times, wrong network
    accts = sessions.column("aws_account_id").to_pylist()
    names = [join.account_id(k) for k in range(5)]
    moved = pa.array([names[(names.index(a) + 1) % 5] for a in accts], pa.string())
    wrong = sessions.set_column(sessions.column_names.index("aws_account_id"), "aws_account_id", moved)
    out = join.core_attribute(writes, wrong, join.org_config(5)).select(KEYS).sort_by("event_id")
    assert not out.equals(right)
    # the true session of a write is in another account now: none of them is chosen any more
    attributed_right = pc.equal(right.column("status"), "attributed")
    kept = pc.and_(attributed_right, pc.equal(out.column("session_id"), right.column("session_id")))
    assert pc.sum(attributed_right).as_py() > 0
    assert pc.sum(pc.fill_null(kept, False)).as_py() == 0
