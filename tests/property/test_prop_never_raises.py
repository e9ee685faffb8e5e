"""Arbitrary bytes, JSON and CSV never raise out of ``Pipeline.ingest_object``.

Whatever comes in: the outcome reconciles (records in = written + duplicates + skipped + rejected),
an unreadable object is quarantined with its reason, and the lake stays readable afterwards.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tempfile
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditcorr.schemas import TABLES
from tests.factories import SESSION_COLUMNS, T0, ct_name, put, report_name
from tests.hardening.util import new_pipe, quarantined

N = int(os.environ.get("AUDITCORR_PROPERTY_EXAMPLES", "40"))
SETTINGS = settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = st.sampled_from([
    ct_name(1),
    report_name("2026-03-02"),
    "appstream-logs/applications/schedule=DAILY/year=2026/month=03/day=02/daily-app-report-2026-03-02.csv",
    "upload/anything.csv",
    "upload/anything.json",
    "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/03/02/x.json.gz",
])


def check(name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pipe = new_pipe(f"{tmp}/lake")
        out = pipe.ingest_object(name, data)  # must not raise
        assert out.reconciles, out.as_dict()
        if out.error:
            q = quarantined(pipe.lake)
            assert name in q and q[name]["reason"] == out.error
            assert q[name]["copy"].read_bytes() == data
        for table in TABLES:  # every file it wrote reads back
            pipe.lake.read(table)
        again = pipe.ingest_object(name, data)  # and a re-delivery changes nothing
        assert again.reconciles and again.written == 0


def dumps(doc: Any) -> bytes:
    """stdlib json: it writes integers beyond 64 bits, which orjson cannot (inputs may hold them)."""
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


@SETTINGS
@given(name=NAMES, data=st.binary(max_size=2048))
def test_arbitrary_bytes(name, data):
    check(name, data)


@SETTINGS
@given(name=NAMES, data=st.binary(max_size=512))
def test_arbitrary_gzip(name, data):
    check(name, gzip.compress(data, mtime=0))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)

#: values CloudTrail fields get in the wild (and some they should never get)
FIELD_VALUES = {
    "eventID": st.one_of(st.text(max_size=8), st.none(), st.integers(), st.sampled_from(["e-1", "e-2", "e-3"])),
    "eventTime": st.one_of(st.sampled_from(["2026-03-02T08:00:00Z", "2026-03-02T08:00:00", "2026-02-30T08:00:00Z",
                                            "2026-03-02T08:00:00.5+01:00", "", "yesterday"]),
                           st.text(max_size=25), st.integers(), st.none()),
    "eventSource": st.sampled_from(["s3.amazonaws.com", "sts.amazonaws.com", "signin.amazonaws.com",
                                    "ec2.amazonaws.com"]),
    "eventName": st.sampled_from(["PutObject", "CopyObject", "GetObject", "AssumeRoleWithSAML", "ConsoleLogin",
                                  "AssumeRole", "CompleteMultipartUpload"]),
    "sourceIPAddress": st.one_of(st.sampled_from(["10.40.0.17", "AWS Internal", "athena.amazonaws.com",
                                                  "10.40.0.1, 10.40.0.2", "2001:db8::1", "999.1.1.1"]),
                                 st.text(max_size=15), st.integers(), st.none()),
    "userIdentity": st.one_of(JSON, st.fixed_dictionaries({"type": st.sampled_from(["AssumedRole", "SAMLUser"])},
                                                           optional={"arn": st.text(max_size=30),
                                                                     "principalId": st.text(max_size=20),
                                                                     "userName": st.text(max_size=10),
                                                                     "sessionContext": JSON})),
    "requestParameters": st.one_of(JSON, st.fixed_dictionaries({}, optional={"bucketName": st.text(max_size=10),
                                                                             "key": st.text(max_size=30),
                                                                             "roleSessionName": JSON})),
    "responseElements": JSON,
    "additionalEventData": JSON,
    "resources": JSON,
    "vpcEndpointId": st.one_of(st.text(max_size=10), st.none(), st.integers()),
}


@st.composite
def records(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)  # sometimes not even an object
    base = put(T0, "10.40.0.17", event_id="e-base") if draw(st.booleans()) else {}
    for k, strat in FIELD_VALUES.items():
        choice = draw(st.integers(0, 3))
        if choice == 0:
            base.pop(k, None)
        elif choice == 1:
            base[k] = draw(strat)
    return base


@SETTINGS
@given(recs=st.lists(records(), max_size=6), shape=st.sampled_from(["records", "array", "lines", "gzip"]))
def test_arbitrary_cloudtrail_records(recs, shape):
    if shape == "array":
        data = dumps(recs)
    elif shape == "lines":
        data = b"\n".join(dumps(r) for r in recs)
    else:
        data = dumps({"Records": recs})
        data = gzip.compress(data, mtime=0) if shape == "gzip" else data
    check(ct_name(7), data)


@SETTINGS
@given(doc=JSON)
def test_arbitrary_json_documents(doc):
    check(ct_name(8), dumps(doc))
    check(ct_name(9), dumps({"Records": doc}))


CELL = st.one_of(st.text(max_size=12), st.sampled_from(["2026-03-02T08:00:00Z", "2026-03-02 09:00:00+00:00",
                                                        "10.40.0.17", "", "true", "1e400", "nan", "-1"]))


@SETTINGS
@given(header=st.lists(st.one_of(st.sampled_from(SESSION_COLUMNS + ["application_name", "year", "month", "day"]),
                                 st.text(max_size=8)), max_size=10),
       rows=st.lists(st.lists(CELL, max_size=11), max_size=5),
       name=NAMES, crlf=st.booleans(), bom=st.booleans())
def test_arbitrary_csv(header, rows, name, crlf, bom):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    w.writerow(header)
    w.writerows(rows)
    data = buf.getvalue().encode("utf-8", "surrogatepass")
    check(name if name.endswith(".csv") else report_name("2026-03-02"), (b"\xef\xbb\xbf" if bom else b"") + data)
