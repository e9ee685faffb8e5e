"""The synthetic world generator: deterministic, real-shaped files, every scenario present, and a
ground truth that a naive reference join over the written files agrees with."""

from __future__ import annotations

import csv
import gzip
import io
import ipaddress
import re
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from auditcorr_sim import (
    AMBIGUOUS,
    APP_COLUMNS,
    ATTRIBUTED,
    EXTERNAL,
    FLEET_MULTI,
    FLEET_SINGLE,
    OUT_OF_SCOPE,
    SCENARIOS,
    SESSION_COLUMNS,
    UNATTRIBUTED,
    ExpectedWrite,
    World,
    generate_scale,
    generate_world,
)

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CLAIM = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CT_KEY = re.compile(
    r"^cloudtrail/AWSLogs/111122223333/CloudTrail/us-east-1/(\d{4})/(\d{2})/(\d{2})/"
    r"111122223333_CloudTrail_us-east-1_(\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$")
SESSIONS_KEY = re.compile(r"^appstream-logs/sessions/schedule=DAILY/year=(\d{4})/month=(\d{2})/day=(\d{2})/"
                          r"daily-session-report-(\d{4}-\d{2}-\d{2})\.csv$")
APPS_KEY = re.compile(r"^appstream-logs/applications/schedule=DAILY/year=(\d{4})/month=(\d{2})/day=(\d{2})/"
                      r"daily-app-report-(\d{4}-\d{2}-\d{2})\.csv$")
EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
WRITE_EVENTS = {"PutObject", "CopyObject", "CompleteMultipartUpload", "UploadPart", "UploadPartCopy",
                "CreateMultipartUpload", "PostObject"}
FLEET_NET = ipaddress.ip_network("10.40.0.0/16")
FLEET_PREFIX = "arn:aws:sts::111122223333:assumed-role/AppStreamFleetRole/"
TOL = timedelta(seconds=60)


# -- fixtures and readers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    t0 = time.perf_counter()
    w = generate_world(tmp_path_factory.mktemp("world") / "inputs")
    w.elapsed = time.perf_counter() - t0  # type: ignore[attr-defined]
    return w


def rel(world: World, path: Path) -> str:
    return path.relative_to(world.root).as_posix()


def ct_files(world: World) -> list[tuple[Path, list[dict]]]:
    return [(a.path, orjson.loads(gzip.decompress(a.path.read_bytes()))["Records"])
            for a in world.arrivals if a.kind == "cloudtrail"]


@pytest.fixture(scope="module")
def files(world) -> list[tuple[Path, list[dict]]]:
    return ct_files(world)


@pytest.fixture(scope="module")
def records(files) -> dict[str, dict]:
    """eventID -> record, across all files (duplicates are identical; checked below)."""
    out: dict[str, dict] = {}
    for _, recs in files:
        for r in recs:
            out.setdefault(r["eventID"], r)
    return out


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    return rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


@pytest.fixture(scope="module")
def report_rows(world) -> dict[str, list[dict[str, str]]]:
    """report date -> its rows (each report read once)."""
    out = {}
    for a in world.arrivals:
        if a.kind == "sessions_report":
            m = SESSIONS_KEY.match(rel(world, a.path))
            assert m, a.path
            out[m.group(4)] = read_csv(a.path)[1]
    return out


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def ev_time(rec: dict) -> datetime:
    return datetime.strptime(rec["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def session_name(rec: dict) -> str | None:
    arn = rec["userIdentity"].get("arn", "")
    return arn[len(FLEET_PREFIX):] if arn.startswith(FLEET_PREFIX) else None


def by_id(world: World) -> dict[str, dict]:
    return {s["session_id"]: s for s in world.sessions}


# -- determinism, speed, arrivals --------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_and_truth(tmp_path):
    a = generate_world(tmp_path / "a")
    b = generate_world(tmp_path / "b")
    assert snapshot(a.root) == snapshot(b.root)
    assert a.truth == b.truth
    assert a.expected_alerts == b.expected_alerts
    assert a.scenarios == b.scenarios and a.session_scenarios == b.session_scenarios
    assert [(x.at, rel(a, x.path), x.kind) for x in a.arrivals] == \
        [(x.at, rel(b, x.path), x.kind) for x in b.arrivals]
    assert a.sessions == b.sessions and a.users == b.users
    c = generate_world(tmp_path / "c", seed=8)
    assert set(c.truth) != set(a.truth)


def test_default_world_is_fast(world):
    assert world.elapsed < 5.0  # about 0.5 s on an idle core; the bound leaves room for a busy machine


def test_arrivals_sorted_and_cover_every_file(world):
    ats = [a.at for a in world.arrivals]
    assert ats == sorted(ats)
    assert all(a.at.tzinfo is not None and a.at.utcoffset() == timedelta(0) for a in world.arrivals)
    on_disk = {p for p in world.root.rglob("*") if p.is_file()}
    assert on_disk == {a.path for a in world.arrivals}
    kinds = Counter(a.kind for a in world.arrivals)
    assert set(kinds) == {"cloudtrail", "sessions_report", "applications_report", "digest"}
    assert kinds["digest"] == 1
    # one sessions report is delivered twice: same path, listed twice, hours apart
    twice = [p for p, n in Counter(a.path for a in world.arrivals).items() if n > 1]
    assert len(twice) == 1 and "daily-session-report-" in twice[0].name
    at = [a.at for a in world.arrivals if a.path == twice[0]]
    assert at[1] - at[0] >= timedelta(hours=1)
    assert world.session_scenarios["report_delivered_twice"] == [twice[0].name[-14:-4]]


def test_digest_file_is_where_cloudtrail_puts_digests(world):
    (digest,) = [a for a in world.arrivals if a.kind == "digest"]
    key = rel(world, digest.path)
    assert key.startswith("cloudtrail/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/")
    body = orjson.loads(gzip.decompress(digest.path.read_bytes()))
    assert "Records" not in body and body["logFiles"]


# -- CloudTrail files and records ------------------------------------------------------------------


def test_cloudtrail_files_are_gzip_json_with_records_keyed_by_delivery(world, files):
    arrivals = {a.path: a.at for a in world.arrivals if a.kind == "cloudtrail"}
    windows = set()
    seen = set()
    for path, recs in files:
        m = CT_KEY.match(rel(world, path))
        assert m, path
        at = arrivals[path]
        assert (m.group(1), m.group(2), m.group(3)) == (f"{at:%Y}", f"{at:%m}", f"{at:%d}")  # delivery date
        assert m.group(4) == f"{at:%Y%m%dT%H%MZ}"
        assert recs and all(isinstance(r, dict) for r in recs)
        assert all(at - ev_time(r) > timedelta(minutes=3) for r in recs)
        # first deliveries: one 5-minute window a file, delivered 3-12 minutes after it closes (a file
        # may also hold only records delivered again)
        first = [ev_time(r) for r in recs if r["eventID"] not in seen]
        seen.update(r["eventID"] for r in recs)
        if first:
            assert at - max(first) <= timedelta(minutes=17)
            (window,) = {(t - datetime(2026, 1, 1, tzinfo=UTC)) // timedelta(minutes=5) for t in first}
            assert window not in windows
            windows.add(window)
    # records are not in time order inside files
    assert any([r["eventTime"] for r in recs] != sorted(r["eventTime"] for r in recs) for _, recs in files)


def test_some_file_holds_records_from_before_its_key_day(world, files):
    late = 0
    for path, recs in files:
        day = CT_KEY.match(rel(world, path)).group(4)[:8]
        late += any(r["eventTime"][:10].replace("-", "") < day for r in recs)
    assert late >= 1  # the 23:5x window is delivered after midnight


def test_duplicate_deliveries_are_identical_and_later(world, files):
    seen: dict[str, tuple[int, bytes]] = {}
    dup_ids = set()
    n_records = 0
    for i, (_, recs) in enumerate(files):
        for r in recs:
            n_records += 1
            blob = orjson.dumps(r)
            if r["eventID"] in seen:
                first, first_blob = seen[r["eventID"]]
                assert first_blob == blob and first < i
                dup_ids.add(r["eventID"])
                # the first delivery is the file of the record's own window
                assert files[first][1] and ev_time(r) <= max(ev_time(x) for x in files[first][1])
            else:
                seen[r["eventID"]] = (i, blob)
    assert 0.01 <= len(dup_ids) / len(seen) <= 0.03
    assert n_records == len(seen) + len(dup_ids)
    assert set(world.scenarios["duplicate_delivery"]) == dup_ids & set(world.truth)
    assert len(world.scenarios["duplicate_delivery"]) >= 3


def test_write_records_are_exactly_the_truth(world, records):
    writes = {e for e, r in records.items() if r.get("eventSource") == "s3.amazonaws.com"
              and r.get("eventName") in WRITE_EVENTS}
    assert writes == set(world.truth)


def test_fleet_write_records_look_real(world, records):
    for eid, exp in world.truth.items():
        r = records[eid]
        assert UUID4.match(r["eventID"])
        assert r["eventVersion"] in ("1.09", "1.10", "1.11")
        assert EVENT_TIME.match(r["eventTime"])
        assert r["eventSource"] == "s3.amazonaws.com" and r["awsRegion"] == "us-east-1"
        assert r["eventType"] == "AwsApiCall" and r["managementEvent"] is False and r["readOnly"] is False
        assert r["eventCategory"] == "Data" and r["recipientAccountId"] == "111122223333"
        assert r["responseElements"] is None and isinstance(r["additionalEventData"], dict)
        rp = r["requestParameters"]
        assert {"bucketName", "key", "Host"} <= set(rp)
        bucket_arn = f"arn:aws:s3:::{rp['bucketName']}"
        assert r["resources"] == [{"type": "AWS::S3::Object", "ARN": f"{bucket_arn}/{rp['key']}"},
                                  {"accountId": "111122223333", "type": "AWS::S3::Bucket", "ARN": bucket_arn}]
        ui = r["userIdentity"]
        if exp.status == OUT_OF_SCOPE:
            assert ui["type"] == "IAMUser" and ui["arn"] == "arn:aws:iam::111122223333:user/etl-bot"
            assert r["sourceIPAddress"] == "192.0.2.10"
            continue
        name = session_name(r)
        assert name
        assert ui["type"] == "AssumedRole" and ui["principalId"].startswith("AROA")
        assert ui["principalId"].endswith(f":{name}") and ui["accessKeyId"].startswith("ASIA")
        issuer = ui["sessionContext"]["sessionIssuer"]
        assert issuer == {"type": "Role", "principalId": issuer["principalId"],
                          "arn": "arn:aws:iam::111122223333:role/AppStreamFleetRole",
                          "accountId": "111122223333", "userName": "AppStreamFleetRole"}
        assert ui["sessionContext"]["attributes"]["mfaAuthenticated"] == "false"
        if ipaddress.ip_address(r["sourceIPAddress"]) in FLEET_NET:
            assert r["vpcEndpointId"] == "vpce-0a1b2c3d4e5f60718"


def test_session_ids_are_lowercase_uuids(world):
    assert all(UUID4.match(s["session_id"]) for s in world.sessions)
    assert len({s["session_id"] for s in world.sessions}) == len(world.sessions)


def test_claim_convention_mostly_session_ids(world, records):
    fleet = [r for e, r in records.items() if e in world.truth and session_name(r)]
    share = sum(bool(CLAIM.match(session_name(r))) for r in fleet) / len(fleet)
    assert 0.6 <= share <= 0.8


def test_noise_a_pipeline_must_skip(records):
    names = Counter((r["eventSource"], r["eventName"]) for r in records.values())
    for ev in ("GetObject", "HeadObject", "ListObjects"):
        assert names["s3.amazonaws.com", ev] > 0
    assert names["appstream.amazonaws.com", "DescribeSessions"] > 0
    assert names["appstream.amazonaws.com", "CreateStreamingURL"] > 0
    assert any(r["sourceIPAddress"] == "AWS Internal" for r in records.values())
    reads = [r for r in records.values() if r["eventName"] in ("GetObject", "HeadObject", "ListObjects")]
    assert all(r["readOnly"] is True and session_name(r) for r in reads)


def test_every_session_has_a_saml_logon_shortly_before(world, records):
    logons = {e: r for e, r in records.items() if r["eventName"] == "AssumeRoleWithSAML"}
    assert len(logons) == len(world.sessions)
    for s in world.sessions:
        r = logons[s["logon_event_id"]]
        user = s["user_id"]
        assert timedelta(seconds=10) <= s["session_start_time"] - ev_time(r) <= timedelta(seconds=121)
        assert r["eventSource"] == "sts.amazonaws.com"
        ui = r["userIdentity"]
        assert ui["type"] == "SAMLUser" and ui["userName"] == user and ui["principalId"].endswith(f":{user}")
        assert ui["identityProvider"] == "arn:aws:iam::111122223333:saml-provider/Okta"
        rp, re_ = r["requestParameters"], r["responseElements"]
        assert rp["roleArn"] == "arn:aws:iam::111122223333:role/AppStreamSAMLRole"
        assert rp["principalArn"] == ui["identityProvider"] and rp["roleSessionName"] == user
        assert rp["durationSeconds"] == 3600
        assert re_["subject"] == user and re_["subjectType"] == "persistent"
        assert re_["audience"] == "https://signin.aws.amazon.com/saml"
        assert re_["issuer"] and re_["nameQualifier"]
        assert re_["assumedRoleUser"]["arn"].endswith(f"/AppStreamSAMLRole/{user}")
        creds = re_["credentials"]
        assert creds["accessKeyId"].startswith("ASIA") and "sessionToken" not in creds
        ip = ipaddress.ip_address(r["sourceIPAddress"])
        assert ip.is_global or ip in ipaddress.ip_network("198.51.100.0/24") or \
            ip in ipaddress.ip_network("203.0.113.0/24") or ip in ipaddress.ip_network("100.64.0.0/10")
        assert r["sourceIPAddress"] in s["client_ip_addresses"] and r["sourceIPAddress"] != "203.0.113.77"


def test_users_are_email_like_and_each_has_own_client_ips(world):
    assert len(world.users) == 36 and len(set(world.users)) == 36
    assert all(re.match(r"^[a-z]+\.[a-z]+\d*@example\.com$", u) for u in world.users)
    owner: dict[str, str] = {}
    for s in world.sessions:
        for ip in s["client_ip_addresses"]:
            assert owner.setdefault(ip, s["user_id"]) == s["user_id"]


# -- usage reports -------------------------------------------------------------------------------------


def test_sessions_reports_have_the_32_columns_and_arrive_a_day_late(world, report_rows):
    assert len(SESSION_COLUMNS) == 32
    for a in world.arrivals:
        if a.kind != "sessions_report":
            continue
        header, rows = read_csv(a.path)
        assert tuple(header) == SESSION_COLUMNS
        day_text = SESSIONS_KEY.match(rel(world, a.path)).group(4)
        day = datetime.strptime(day_text, "%Y-%m-%d").replace(tzinfo=UTC)
        assert day + timedelta(days=1, hours=2) <= a.at
        if a.at != max(x.at for x in world.arrivals if x.path == a.path):
            assert a.at < day + timedelta(days=1, hours=6)
        for r in rows:
            assert r["authentication_type"] == "SAML" and r["stack_name"] == "analytics"
            assert r["aws_account_id"] == "111122223333" and r["region"] == "us-east-1"
            assert ipaddress.ip_address(r["eni_private_ip_address"]) in FLEET_NET
            assert r["is_multisession"] in ("true", "false") and r["connected_at_least_once"] == "true"
            assert re.match(r"^i-0[0-9a-f]{16}$", r["instance_id"])
            assert r["fleet_name"] == (FLEET_MULTI if r["is_multisession"] == "true" else FLEET_SINGLE)
            for ip in r["client_ip_addresses"].split(";"):
                ipaddress.ip_address(ip)
            start, end = parse_time(r["session_start_time"]), parse_time(r["session_end_time"])
            assert f"{end:%Y-%m-%d}" == f"{day:%Y-%m-%d}"
            assert int(r["session_duration_in_seconds"]) == int((end - start).total_seconds())


def test_report_time_formats_vary(report_rows):
    texts = [r["session_start_time"] for rows in report_rows.values() for r in rows]
    assert any(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", t) for t in texts)
    assert any(t.endswith("+00:00") for t in texts)
    assert any(re.match(r"^.*T\d\d:\d\d:\d\d\.\d{3}Z$", t) for t in texts)
    assert any(";" in r["client_ip_addresses"] for rows in report_rows.values() for r in rows)


def test_each_session_in_exactly_its_end_day_report(world, report_rows):
    where = defaultdict(list)
    for day, rows in report_rows.items():
        for r in rows:
            where[r["user_session_id"]].append(day)
    assert set(where) == {s["session_id"] for s in world.sessions}
    for s in world.sessions:
        assert where[s["session_id"]] == [f"{s['session_end_time']:%Y-%m-%d}"]


def test_sessions_spanning_midnight_only_in_the_next_days_report(world, report_rows):
    span = world.session_scenarios["spanning_midnight"]
    assert len(span) >= 2
    sessions = by_id(world)
    for sid in span:
        s = sessions[sid]
        start_day, end_day = f"{s['session_start_time']:%Y-%m-%d}", f"{s['session_end_time']:%Y-%m-%d}"
        assert start_day < end_day
        assert sid not in {r["user_session_id"] for r in report_rows.get(start_day, [])}
        assert sid in {r["user_session_id"] for r in report_rows[end_day]}
    mid = [world.truth[e] for e in world.scenarios["midnight_span"]]
    assert all(e.status == ATTRIBUTED and e.session_id in span for e in mid)


def test_applications_reports(world, report_rows):
    apps = [a for a in world.arrivals if a.kind == "applications_report"]
    assert len(apps) == len(report_rows)
    for a in apps:
        header, rows = read_csv(a.path)
        assert tuple(header) == APP_COLUMNS
        day = APPS_KEY.match(rel(world, a.path)).group(4)
        assert {r["user_session_id"] for r in rows} == {r["user_session_id"] for r in report_rows[day]}
        assert all(r["schedule"] == "DAILY" and f"{r['year']}-{r['month']}-{r['day']}" == day for r in rows)
    assert any("," in r["application_name"] for a in apps for r in read_csv(a.path)[1])  # CSV quoting


# -- scenarios ---------------------------------------------------------------------------------------


def test_every_scenario_is_present(world):
    counts = {k: len(v) for k, v in world.scenarios.items()}
    assert set(counts) == set(SCENARIOS)
    assert all(n > 0 for n in counts.values()), counts
    assert counts["disguised_session_id"] >= 3 and counts["fabricated_session_id"] == 1
    assert counts["multi_ambiguous"] >= 3 and counts["replayed_credentials"] >= 1
    for ids in world.scenarios.values():
        assert set(ids) <= set(world.truth)
    assert Counter(e.status for e in world.truth.values()).keys() == {
        ATTRIBUTED, AMBIGUOUS, UNATTRIBUTED, EXTERNAL, OUT_OF_SCOPE}


def test_a_fleets_and_concurrency(world):
    fleets = Counter(s["fleet_name"] for s in world.sessions)
    assert set(fleets) == {FLEET_SINGLE, FLEET_MULTI}
    assert len({s["user_id"] for s in world.sessions}) >= 24
    per_ip = defaultdict(list)
    for s in world.sessions:
        per_ip[s["eni_private_ip_address"]].append(s)
        assert s["is_multisession"] == (s["fleet_name"] == FLEET_MULTI)
    peak = {}
    for ip, ss in per_ip.items():
        assert len({s["fleet_name"] for s in ss}) == 1 and len({s["instance_id"] for s in ss}) == 1
        events = sorted([(s["session_start_time"], 1) for s in ss] +
                        [(s["session_end_time"], -1) for s in ss])
        level = top = 0
        for _, d in events:
            level += d
            top = max(top, level)
        peak[ip] = (ss[0]["fleet_name"], top)
    assert all(top == 1 for fleet, top in peak.values() if fleet == FLEET_SINGLE)
    multi = [top for fleet, top in peak.values() if fleet == FLEET_MULTI]
    assert multi and all(2 <= top <= 4 for top in multi) and max(multi) == 4
    # a user never holds two sessions at once
    per_user = defaultdict(list)
    for s in world.sessions:
        per_user[s["user_id"]].append((s["session_start_time"], s["session_end_time"]))
    for spans in per_user.values():
        spans.sort()
        assert all(b[0] > a[1] for a, b in zip(spans, spans[1:]))


def test_b_ip_reuse_after_short_gaps_with_writes_at_both_edges(world, records):
    pairs = [p.split(",") for p in world.session_scenarios["short_gap_pairs"]]
    assert any(g == "20" for _, _, g in pairs)
    sessions = by_id(world)
    for a, b, g in pairs:
        sa, sb = sessions[a], sessions[b]
        assert sa["eni_private_ip_address"] == sb["eni_private_ip_address"]
        assert sb["session_start_time"] - sa["session_end_time"] == timedelta(seconds=int(g))
    for eid in world.scenarios["edge_end_in_next_tolerance"]:
        exp, t = world.truth[eid], ev_time(records[eid])
        s = sessions[exp.session_id]
        assert s["session_end_time"] - timedelta(seconds=10) <= t < s["session_end_time"]
    for eid in world.scenarios["inside_beats_tolerance"]:
        exp, t = world.truth[eid], ev_time(records[eid])
        s = sessions[exp.session_id]
        assert s["session_start_time"] < t <= s["session_start_time"] + TOL
    (g_claim,) = world.scenarios["gap_claim_settles"]
    (g_amb,) = world.scenarios["gap_ambiguous"]
    assert world.truth[g_claim].status == ATTRIBUTED
    assert session_name(records[g_claim]) == world.truth[g_claim].session_id
    assert world.truth[g_amb].status == AMBIGUOUS and len(world.truth[g_amb].candidate_session_ids) == 2


def test_c_clock_skew_within_tolerance_still_attributed(world, records):
    sessions = by_id(world)
    for name in ("skew_before_start", "skew_after_end"):
        assert len(world.scenarios[name]) >= 3
        for eid in world.scenarios[name]:
            exp, t = world.truth[eid], ev_time(records[eid])
            s = sessions[exp.session_id]
            assert exp.status == ATTRIBUTED
            if name == "skew_before_start":
                assert s["session_start_time"] - timedelta(seconds=46) <= t < s["session_start_time"]
            else:
                assert s["session_end_time"] < t <= s["session_end_time"] + timedelta(seconds=46)
    # a write inside B's own window and inside A's tolerance goes to B
    for eid in world.scenarios["inside_beats_tolerance"]:
        t = ev_time(records[eid])
        b = sessions[world.truth[eid].session_id]
        others = [s for s in world.sessions if s["eni_private_ip_address"] == b["eni_private_ip_address"]
                  and s is not b and s["session_end_time"] < t <= s["session_end_time"] + TOL]
        assert len(others) == 1


def test_f_g_disguised_and_fabricated_session_ids(world, records):
    sessions = by_id(world)
    for eid in world.scenarios["disguised_session_id"]:
        exp, r = world.truth[eid], records[eid]
        claimed = session_name(r)
        assert claimed in sessions and claimed != exp.session_id
        holder = sessions[exp.session_id]
        assert r["sourceIPAddress"] == holder["eni_private_ip_address"]
        assert sessions[claimed]["eni_private_ip_address"] != holder["eni_private_ip_address"]
        assert exp.status == ATTRIBUTED and ("session_id_mismatch", eid) in world.expected_alerts
    (eid,) = world.scenarios["fabricated_session_id"]
    claimed = session_name(records[eid])
    assert UUID4.match(claimed) and claimed not in sessions
    assert world.truth[eid].status == ATTRIBUTED and ("unknown_session_id", eid) in world.expected_alerts


def test_h_i_replayed_credentials_and_idle_ip(world, records):
    for eid in world.scenarios["replayed_credentials"]:
        r = records[eid]
        assert r["sourceIPAddress"] == "203.0.113.77" and session_name(r) and "vpcEndpointId" not in r
        assert world.truth[eid] == ExpectedWrite(EXTERNAL, None, None)
        assert ("credentials_outside_fleet", eid) in world.expected_alerts
    used = {s["eni_private_ip_address"] for s in world.sessions}
    for eid in world.scenarios["idle_fleet_ip"]:
        ip = records[eid]["sourceIPAddress"]
        assert ip.startswith("10.40.99.") and ip not in used
        assert world.truth[eid] == ExpectedWrite(UNATTRIBUTED, None, None)
        assert ("unattributed_activity", eid) in world.expected_alerts


def test_j_multi_session_ambiguity_and_claims(world, records):
    sessions = by_id(world)
    for eid in world.scenarios["multi_ambiguous"]:
        exp, r = world.truth[eid], records[eid]
        name = session_name(r)
        assert not CLAIM.match(name) and (name == "AppStream2.0" or name.startswith("i-0"))
        assert exp.status == AMBIGUOUS and exp.user_id is None and exp.session_id is None
        assert 2 <= len(exp.candidate_session_ids) <= 4
        assert list(exp.candidate_session_ids) == sorted(exp.candidate_session_ids)
        for sid in exp.candidate_session_ids:
            s = sessions[sid]
            assert s["is_multisession"] and s["eni_private_ip_address"] == r["sourceIPAddress"]
    for eid in world.scenarios["multi_claim_resolved"]:
        exp, r = world.truth[eid], records[eid]
        assert session_name(r) == exp.session_id and sessions[exp.session_id]["is_multisession"]


def test_out_of_scope_writes_raise_nothing(world):
    for eid in world.scenarios["out_of_scope_iam_user"]:
        assert world.truth[eid] == ExpectedWrite(OUT_OF_SCOPE, None, None)
    alerting = {e for _, e in world.expected_alerts}
    assert alerting.isdisjoint(world.scenarios["out_of_scope_iam_user"])
    assert {r for r, _ in world.expected_alerts} == {
        "session_id_mismatch", "unknown_session_id", "credentials_outside_fleet", "unattributed_activity"}


def test_truth_agrees_with_a_naive_reference_join(world, records, report_rows):
    """Brute force over the written files only (reports parsed from CSV, records from JSON): the
    truth recorded by construction must be what the documented rules give."""
    sessions = []
    for rows in report_rows.values():
        for r in rows:
            sessions.append((r["user_session_id"], r["user_id"], r["eni_private_ip_address"],
                             parse_time(r["session_start_time"]), parse_time(r["session_end_time"])))
    known = {s[0] for s in sessions}
    alerts = set()
    for eid, exp in world.truth.items():
        r = records[eid]
        name = session_name(r)
        if name is None:
            want = ExpectedWrite(OUT_OF_SCOPE, None, None)
        else:
            ip, t = r["sourceIPAddress"], ev_time(r)
            claim = name if CLAIM.match(name) else None
            if ipaddress.ip_address(ip) not in FLEET_NET:
                want = ExpectedWrite(EXTERNAL, None, None)
                alerts.add(("credentials_outside_fleet", eid))
            else:
                cands = [s for s in sessions if s[2] == ip and s[3] - TOL <= t <= s[4] + TOL]
                strict = [s for s in cands if s[3] <= t <= s[4]]
                chosen = [s for s in cands if s[0] == claim] or strict or cands
                if len(chosen) == 1:
                    want = ExpectedWrite(ATTRIBUTED, chosen[0][1], chosen[0][0])
                elif chosen:
                    want = ExpectedWrite(AMBIGUOUS, None, None, tuple(sorted(s[0] for s in cands)))
                else:
                    want = ExpectedWrite(UNATTRIBUTED, None, None)
                    alerts.add(("unattributed_activity", eid))
                if claim and claim not in {s[0] for s in cands}:
                    alerts.add(("session_id_mismatch" if claim in known else "unknown_session_id", eid))
        assert exp == want, (eid, exp, want)
    assert alerts == world.expected_alerts


@pytest.mark.parametrize("kw", [dict(n_users=48, days=3, seed=3), dict(n_users=24, days=1, seed=11)])
def test_other_sizes_and_seeds_stay_consistent(tmp_path, kw):
    w = generate_world(tmp_path / "w", **kw)
    assert {s for s, ids in w.scenarios.items() if not ids} == set()
    recs = {}
    for _, rs in ct_files(w):
        for r in rs:
            recs.setdefault(r["eventID"], r)
    assert {e for e, r in recs.items() if r["eventName"] in WRITE_EVENTS
            and r["eventSource"] == "s3.amazonaws.com"} == set(w.truth)
    sessions = by_id(w)
    for eid in w.scenarios["multi_ambiguous"] + w.scenarios["gap_ambiguous"]:
        t, ip = ev_time(recs[eid]), recs[eid]["sourceIPAddress"]
        cands = sorted(s["session_id"] for s in w.sessions if s["eni_private_ip_address"] == ip
                       and s["session_start_time"] - TOL <= t <= s["session_end_time"] + TOL)
        assert tuple(cands) == w.truth[eid].candidate_session_ids
    for eid, exp in w.truth.items():
        if exp.status == ATTRIBUTED:
            s = sessions[exp.session_id]
            assert recs[eid]["sourceIPAddress"] == s["eni_private_ip_address"]
            assert s["session_start_time"] - TOL <= ev_time(recs[eid]) <= s["session_end_time"] + TOL


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate_world(tmp_path / "x", n_users=2)
    with pytest.raises(ValueError):
        generate_world(tmp_path / "x", days=0)
    with pytest.raises(ValueError):
        generate_world(tmp_path / "x", writes_per_session=(3, 1))
    with pytest.raises(ValueError):
        generate_scale(tmp_path / "y", n_writes=10, n_sessions=0)
    with pytest.raises(ValueError):
        generate_scale(tmp_path / "y", n_writes=10, n_sessions=5, multi_session_share=1.5)


# -- the scale path ----------------------------------------------------------------------------------


def test_generate_scale_writes_exactly_n_writes(tmp_path):
    sw = generate_scale(tmp_path / "s", n_writes=1234, n_sessions=17, records_per_file=100, days=2)
    assert sw.n_writes == 1234 and sw.n_sessions == 17 and sw.n_records == 1234 + 17
    names: Counter[str] = Counter()
    ids = set()
    per_ip_names = defaultdict(set)
    for path in sw.cloudtrail_files:
        assert CT_KEY.match(path.relative_to(sw.root).as_posix()), path
        recs = orjson.loads(gzip.decompress(path.read_bytes()))["Records"]
        assert 0 < len(recs) <= 101
        for r in recs:
            names[r["eventName"]] += 1
            assert UUID4.match(r["eventID"]) and EVENT_TIME.match(r["eventTime"])
            assert "2026-03-02" <= r["eventTime"][:10] <= "2026-03-03"  # days=2 from 2026-03-02
            ids.add(r["eventID"])
            if r["eventName"] == "PutObject":
                assert ipaddress.ip_address(r["sourceIPAddress"]) in FLEET_NET
                assert r["resources"][0]["ARN"].endswith(r["requestParameters"]["key"])
                per_ip_names[r["sourceIPAddress"]].add(session_name(r))
    assert names == {"PutObject": 1234, "AssumeRoleWithSAML": 17}
    assert len(ids) == 1234 + 17
    rows = []
    for rp in sw.sessions_reports:
        header, rs = read_csv(rp)
        assert tuple(header) == SESSION_COLUMNS and SESSIONS_KEY.match(rp.relative_to(sw.root).as_posix())
        rows += rs
    assert len(rows) == 17 and len({r["user_session_id"] for r in rows}) == 17
    sids = {r["user_session_id"] for r in rows}
    for claimed in per_ip_names.values():
        assert claimed - {"AppStream2.0"} <= sids


def test_generate_scale_is_deterministic_and_handles_zero(tmp_path):
    a = generate_scale(tmp_path / "a", n_writes=300, n_sessions=9, records_per_file=64)
    b = generate_scale(tmp_path / "b", n_writes=300, n_sessions=9, records_per_file=64)
    assert snapshot(a.root) == snapshot(b.root)
    z = generate_scale(tmp_path / "z", n_writes=0, n_sessions=3)
    recs = [r for p in z.cloudtrail_files for r in orjson.loads(gzip.decompress(p.read_bytes()))["Records"]]
    assert [r["eventName"] for r in recs] == ["AssumeRoleWithSAML"] * 3


def test_generate_scale_multi_session_share(tmp_path):
    sw = generate_scale(tmp_path / "m", n_writes=600, n_sessions=120, multi_session_share=0.5)
    rows = [r for rp in sw.sessions_reports for r in read_csv(rp)[1]]
    share = sum(r["is_multisession"] == "true" for r in rows) / len(rows)
    assert 0.3 <= share <= 0.7
    multi_ips = Counter(r["eni_private_ip_address"] for r in rows if r["is_multisession"] == "true")
    single_ips = {r["eni_private_ip_address"] for r in rows if r["is_multisession"] == "false"}
    assert multi_ips and single_ips.isdisjoint(multi_ips)
