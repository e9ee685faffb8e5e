"""``auditcorr demo``, the README's main job, end to end through the command line: it must show the
attribution summary, the alerts the generated world holds, ``who`` with its evidence chain and a
SQL query, and every number it prints must agree with the lake it leaves behind (``--keep``)."""

from __future__ import annotations

import re

from click.testing import CliRunner

from auditcorr.lake import Lake
from auditcorr_cli.main import main
from auditcorr_cli.query.engine import LocalEngine


def test_the_demo_shows_attribution_alerts_who_and_a_query(tmp_path):
    r = CliRunner().invoke(main, ["demo", "--keep", str(tmp_path / "demo")])
    assert r.exit_code == 0, r.output
    out = r.output
    for section in ("ingest summary", "== attribution", "== open alerts ==", "== auditcorr who --bucket",
                    "== auditcorr query"):
        assert section in out
    assert "-> user " in out and "-> session " in out and "claims session " in out  # the evidence chain
    assert "writes first attributed from the live AppStream API, then confirmed by the usage report" in out

    eng = LocalEngine(Lake.open(str(tmp_path / "demo" / "lake")))
    # the attribution table printed is the lake's: each write once, latest status
    printed = dict(re.findall(r"^(attributed|ambiguous|external|unattributed|pending)\s+(\d+)\s", out, re.M))
    got = eng.query("SELECT status, count(*) AS n FROM attributed_activity_latest GROUP BY status").to_pylist()
    assert {k: int(v) for k, v in printed.items()} == {r["status"]: r["n"] for r in got}
    assert int(printed["attributed"]) > 1000
    # the open alerts printed are the lake's, and the scenarios of the world are among them
    n_open = eng.query("SELECT count(*) AS n FROM alerts_latest WHERE status = 'open' AND rule IN "
                       "('session_id_mismatch', 'unknown_session_id', 'credentials_outside_fleet', "
                       "'unattributed_activity')").column("n")[0].as_py()
    assert f"({n_open} rows)" in out
    for rule in ("session_id_mismatch", "unknown_session_id", "credentials_outside_fleet", "unattributed_activity"):
        assert rule in out
    # the query's top user wrote as many objects as the lake says
    top = re.search(r"^(\S+@example\.com)\s+(\d+)\s+(\d+)\s", out.split("== auditcorr query")[1], re.M)
    assert top is not None
    n = eng.query("SELECT count(*) AS n FROM attributed_activity_latest WHERE user_id = ? AND status = 'attributed'",
                  [top.group(1)]).column("n")[0].as_py()
    assert n == int(top.group(2))

    # the organisation part: a line per account, its numbers the organisation lake's, none attributed
    # to another account's session although both fleets use the same 10.40.0.0/16
    org = eng.__class__(Lake.open(str(tmp_path / "demo" / "org" / "lake")))
    lines = re.findall(r"^account (\d{12}) (\S+): (\d+) writes, (\d+) attributed to its own users, (\d+) pending, "
                       r"(\d+) to another account's session$", out, re.M)
    assert len({a for a, *_ in lines}) == 2
    for account, region, writes, attributed, pending, other in lines:
        got = org.query("SELECT count(*) AS n, count(*) FILTER (WHERE status = 'attributed') AS a, "
                        "count(*) FILTER (WHERE status = 'pending') AS p FROM attributed_activity_latest "
                        "WHERE account_id = ? AND region = ?", [account, region]).to_pylist()[0]
        assert (got["n"], got["a"], got["p"]) == (int(writes), int(attributed), int(pending))
        assert int(attributed) > 50 and other == "0"
    assert sum(int(p) for *_, p, _ in lines) > 0  # the missing report's writes wait
    assert out.count("alert usage_report_missing (") == 1
