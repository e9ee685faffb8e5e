"""``auditcorr demo``, the README's main job, end to end through the command line: it must show the
attribution summary, the alerts the generated world holds, ``who`` with its evidence chain and a
SQL query, and every number it prints must agree with the lake it leaves behind (``--keep``)."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
from click.testing import CliRunner

from auditcorr.lake import Lake
from auditcorr.ocsf.export import AUTHENTICATION, DATASTORE, FINDING
from auditcorr_cli.main import main
from auditcorr_cli.query.engine import LocalEngine


def test_the_demo_shows_attribution_alerts_who_and_a_query(tmp_path):
    r = CliRunner().invoke(main, ["demo", "--keep", str(tmp_path / "demo")])
    assert r.exit_code == 0, r.output
    out = r.output
    for section in ("ingest summary", "== attribution", "== open findings", "== auditcorr who --bucket",
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
    # the open findings printed are the lake's, with their signal counts, and the world's scenarios are among them
    fi = eng.query("SELECT rule, event_count FROM findings_latest WHERE status = 'open'").to_pylist()
    n_signals = eng.query("SELECT count(*) AS n FROM alerts_latest WHERE status = 'open' AND suppressed_by IS NULL "
                          "AND finding_id IS NOT NULL").column("n")[0].as_py()
    assert f"{len(fi)} open finding(s) from {n_signals} open signal(s)" in out
    assert sum(r["event_count"] for r in fi) == n_signals
    section = out.split("== open findings")[1].split("== auditcorr who")[0]
    assert f"({len(fi)} rows)" in section
    for rule in ("session_id_mismatch", "unknown_session_id", "credentials_outside_fleet", "unattributed_activity"):
        assert rule in section
    printed_counts = [int(m) for m in re.findall(r"^\S+\s+\S+\s+\w+\s+(\d+)\s", section, re.M)]
    assert sorted(printed_counts) == sorted(r["event_count"] for r in fi)
    # the query's top user wrote as many objects as the lake says
    top = re.search(r"^(\S+@example\.com)\s+(\d+)\s+(\d+)\s", out.split("== auditcorr query")[1], re.M)
    assert top is not None
    n = eng.query("SELECT count(*) AS n FROM attributed_activity_latest WHERE user_id = ? AND status = 'attributed'",
                  [top.group(1)]).column("n")[0].as_py()
    assert n == int(top.group(2))
    # the OCSF line: where the export went, and per source as many records as its files hold, each of its
    # class; one record per write, logon and alert of the lake
    m = re.search(r"^OCSF 1\.6\.0 export \(Security Lake custom-source layout\) -> (\S+)/ext: (.+) records$", out,
                  re.M)
    assert m is not None and m.group(1) == str(tmp_path / "demo" / "ocsf")
    printed = {name: int(n) for name, n in (part.rsplit(" ", 1) for part in m.group(2).split(", "))}
    lake_rows = {DATASTORE: "attributed_activity_latest", AUTHENTICATION: "logons", FINDING: "alerts_latest"}
    for source, class_uid in ((DATASTORE, 6005), (AUTHENTICATION, 3002), (FINDING, 2004)):
        tables = [pq.read_table(p) for p in sorted((tmp_path / "demo" / "ocsf" / "ext" / source).rglob("*.parquet"))]
        assert sum(t.num_rows for t in tables) == printed[source] > 0, source
        assert {u for t in tables for u in t.column("class_uid").to_pylist()} == {class_uid}
        n = eng.query(f"SELECT count(*) AS n FROM {lake_rows[source]}").column("n")[0].as_py()
        assert printed[source] == n, source

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
    # Athena's result writes: the printed counts are the lake's, some placed through the query's start
    m = re.search(r"^Athena result writes \(invokedBy, no address\): (\d+) placed at their session through "
                  r"the query's StartQueryExecution, (\d+) via_service", out, re.M)
    assert m is not None
    got = org.query("SELECT count(*) FILTER (WHERE match = 'credentials') AS p, count(*) FILTER (WHERE status = "
                    "'via_service') AS v FROM attributed_activity_latest WHERE source_ip = 'athena.amazonaws.com'"
                    ).to_pylist()[0]
    assert (got["p"], got["v"]) == (int(m.group(1)), int(m.group(2))) and got["p"] > 0 and got["v"] > 0
