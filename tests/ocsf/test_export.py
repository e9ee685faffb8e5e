"""``auditcorr export ocsf``: Security Lake layout, sorted and deterministic files, Parquet -> JSON
round trip, corrected days after late re-attribution, and s3:// output (moto server)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from click.testing import CliRunner

from auditcorr.lake import Lake
from auditcorr.ocsf.export import SOURCES, Output, export_ocsf, prune
from auditcorr.ocsf.validate import Validator
from auditcorr_cli.main import main
from tests.ocsf import scenario as sc

LAYOUT = re.compile(r"^ext/(?P<source>auditcorr-[a-z-]+)/region=(?P<region>[a-z0-9-]+)/accountId=(?P<account>\d{12})/"
                    r"eventDay=(?P<day>\d{8})/(?P=source)-(?P=day)-\d{4}\.parquet$")


def files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def export(lake_path: Path, out: Path, **kw):
    return export_ocsf(Lake.open(str(lake_path)), Output.open(str(out)), **kw)


def test_layout_one_class_per_source_partitioned_by_region_account_day(scenario_lake, tmp_path):
    out = tmp_path / "sl"
    result = export(scenario_lake, out)
    got = files(out)
    assert got and all(LAYOUT.match(p) for p in got), sorted(got)
    parts = {(m["source"], m["day"]) for m in map(LAYOUT.match, got)}
    assert parts == {("auditcorr-datastore", "20260302"), ("auditcorr-datastore", "20260303"),
                     ("auditcorr-auth", "20260302"),
                     ("auditcorr-finding", "20260302"), ("auditcorr-finding", "20260303")}
    class_of = {"auditcorr-datastore": 6005, "auditcorr-auth": 3002,
                "auditcorr-finding": 2004}
    for path in got:
        m = LAYOUT.match(path)
        t = pq.read_table(out / path)
        assert set(t.column("class_uid").to_pylist()) == {class_of[m["source"]]}
        times = t.column("time").to_pylist()
        assert times == sorted(times)
        days = {datetime.fromtimestamp(x / 1000, UTC).strftime("%Y%m%d") for x in times}
        assert days == {m["day"]}
        assert set(t.column("cloud").combine_chunks().field("region").to_pylist()) == {m["region"]}
    assert result.sources["auditcorr-datastore"].records == 5
    assert sum(r.records for r in result.sources.values()) == sum(pq.read_metadata(out / p).num_rows for p in got)


def test_parquet_to_json_round_trip_validates_every_record(scenario_lake, tmp_path):
    out = tmp_path / "sl"
    export(scenario_lake, out)
    validator = Validator()
    n = 0
    for p in sorted(out.rglob("*.parquet")):
        for rec in pq.read_table(p).to_pylist():
            text = json.dumps(prune(rec))
            back = json.loads(text)
            assert validator.validate(back) == [], (p.name, back)
            assert isinstance(back["time"], int) and isinstance(back["metadata"], dict)
            n += 1
    assert n == 12  # 5 writes + 2 logons + 5 alerts


def test_re_export_gives_the_same_files_and_bytes(scenario_lake, tmp_path):
    first = export(scenario_lake, tmp_path / "a")
    again = export(scenario_lake, tmp_path / "a")
    other = export(scenario_lake, tmp_path / "b")
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert all(not r.written and not r.deleted for r in again.sources.values())
    assert sum(len(r.unchanged) for r in again.sources.values()) == sum(len(r.written) for r in first.sources.values())
    assert sum(len(r.written) for r in other.sources.values()) == len(files(tmp_path / "b"))


def _activity(out: Path, day: str) -> dict[str, dict]:
    [p] = list(out.glob(f"ext/auditcorr-datastore/*/*/eventDay={day}/*.parquet"))
    return {r["metadata"]["uid"]: prune(r) for r in pq.read_table(p).to_pylist()}


def test_late_re_attribution_rewrites_only_the_affected_day(scenario_lake, tmp_path):
    out = tmp_path / "sl"
    export(scenario_lake, out)
    before = files(out)
    assert "user" not in _activity(out, "20260303")["w-pending"]["actor"]

    sc.deliver_late_report(scenario_lake)
    result = export(scenario_lake, out)
    after = files(out)
    changed = {p for p in after if before.get(p) != after[p]}
    # the days the pipeline recomputed (03-02 rows get a new computed_at), the re-attributed write's
    # day, and the new session alert's day; logons and the 03-02 findings are byte-identical
    assert {(m["source"], m["day"]) for m in map(LAYOUT.match, changed)} == {
        ("auditcorr-datastore", "20260302"), ("auditcorr-datastore", "20260303"),
        ("auditcorr-finding", "20260303")}
    assert set(after) == set(before)
    r = _activity(out, "20260303")["w-pending"]
    assert r["actor"]["user"]["name"] == "erin@example.com" and r["actor"]["session"]["uid"] == sc.sid(5)
    assert r["enrichments"][0]["data"]["previous_status"] == "pending"
    assert r["metadata"]["modified_time"] > r["time"]
    assert len(result.sources["auditcorr-datastore"].written) == 2
    assert len(result.sources["auditcorr-auth"].unchanged) == 1


def test_a_window_exports_whole_days_and_removes_files_it_no_longer_produces(scenario_lake, tmp_path):
    out = tmp_path / "sl"
    export(scenario_lake, out)
    stale = out / "ext/auditcorr-auth/region=us-east-1/accountId=111122223333/eventDay=20260303"
    stale.mkdir(parents=True)
    (stale / "auditcorr-auth-20260303-0000.parquet").write_bytes(b"old")
    keep = out / "ext/auditcorr-auth/region=us-east-1/accountId=111122223333/eventDay=20260301"
    keep.mkdir(parents=True)
    (keep / "auditcorr-auth-20260301-0000.parquet").write_bytes(b"outside the window")
    # a time inside 03-03 selects that whole day
    result = export(scenario_lake, out, since=datetime(2026, 3, 3, 12, tzinfo=UTC),
                    until=datetime(2026, 3, 3, 13, tzinfo=UTC))
    assert result.sources["auditcorr-datastore"].records == 1  # w-pending at 03-03 08:00
    assert [Path(p).name for p in result.sources["auditcorr-auth"].deleted] == [
        "auditcorr-auth-20260303-0000.parquet"]
    assert (keep / "auditcorr-auth-20260301-0000.parquet").exists()
    assert (out / "ext/auditcorr-datastore/region=us-east-1/accountId=111122223333/eventDay=20260302"
            ).is_dir()  # days outside the window are left as they were


def test_a_day_larger_than_the_size_limit_is_split_into_parts(scenario_lake, tmp_path):
    out = tmp_path / "sl"
    result = export(scenario_lake, out, max_file_bytes=2_000)
    parts = sorted(p for p in files(out) if "auditcorr-datastore" in p and "20260302" in p)
    assert len(parts) >= 2
    assert [p[-12:] for p in parts] == [f"{i:04d}.parquet" for i in range(len(parts))]
    times = [t for p in parts for t in pq.read_table(out / p).column("time").to_pylist()]
    assert len(times) == 4 and times == sorted(times)  # four writes on 03-02, in order across parts
    assert result.sources["auditcorr-datastore"].records == 5


def test_cli_export_ocsf(scenario_lake, tmp_path):
    out = tmp_path / "sl"
    res = CliRunner().invoke(main, ["export", "ocsf", "--lake", str(scenario_lake), "--out", str(out),
                                    "--since", "2026-03-02", "--until", "2026-03-04"])
    assert res.exit_code == 0, res.output
    for source in SOURCES:
        assert source in res.output
    assert "auditcorr-datastore: 5 records" in res.output
    assert len(files(out)) == 5
    bad = CliRunner().invoke(main, ["export", "ocsf", "--lake", str(scenario_lake), "--out", str(out),
                                    "--since", "2026-03-04", "--until", "2026-03-02"])
    assert bad.exit_code == 2 and "after" in bad.output


def test_export_to_s3(scenario_lake, tmp_path, fake_aws):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="example-security-lake")
    uri = "s3://example-security-lake/sl"
    first = export_ocsf(Lake.open(str(scenario_lake)), Output.open(uri))
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="example-security-lake")["Contents"])
    assert [k.removeprefix("sl/") for k in keys] == sorted(files(_local(scenario_lake, tmp_path)))
    again = export_ocsf(Lake.open(str(scenario_lake)), Output.open(uri))
    assert all(not r.written for r in again.sources.values())
    assert sum(len(r.unchanged) for r in again.sources.values()) == len(keys)
    body = s3.get_object(Bucket="example-security-lake", Key=keys[0])["Body"].read()
    assert body == files(tmp_path / "local")[keys[0].removeprefix("sl/")]
    fs, path = pafs.FileSystem.from_uri(uri)
    assert pq.read_table(f"{path}/{keys[0].removeprefix('sl/')}", filesystem=fs).num_rows > 0
    assert first.out == "s3://example-security-lake/sl"


def _local(lake_path: Path, tmp_path: Path) -> Path:
    export(lake_path, tmp_path / "local")
    return tmp_path / "local"


def test_each_source_can_have_its_own_output(scenario_lake, tmp_path):
    findings = Output.open(str(tmp_path / "findings-role"))
    export_ocsf(Lake.open(str(scenario_lake)), Output.open(str(tmp_path / "sl")),
                outputs={"auditcorr-finding": findings})
    assert not list((tmp_path / "sl").rglob("*auditcorr-finding*.parquet"))
    assert len(list((tmp_path / "findings-role" / "ext" / "auditcorr-finding").rglob("*.parquet"))) == 2
    assert len(list((tmp_path / "sl").rglob("*.parquet"))) == 3
