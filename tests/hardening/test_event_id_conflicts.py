"""Round two, section 8: a duplicate ``eventID`` with different content is kept "first wins" and
recorded in ``event_id_conflicts`` with both copies' hashes; identical copies are plain duplicates."""

from __future__ import annotations

import copy
import gzip
from datetime import timedelta

import orjson
import pytest

from auditcorr.conflicts import raw_record_hash, record_hash
from tests.factories import T0, ct_name, put, saml_logon
from tests.fixtures.bad import make_corpus as corpus
from tests.hardening.util import by_event, new_pipe

MIN = timedelta(minutes=1)
IP = "10.40.0.17"


def conflicts(pipe) -> list[dict]:
    return sorted(pipe.lake.read("event_id_conflicts").to_pylist(), key=lambda r: (r["event_id"], r["other_hash"]))


def changed(rec: dict, **fields) -> dict:
    out = copy.deepcopy(rec)
    out.update(fields)
    return out


@pytest.mark.parametrize("generic", [False, True], ids=["typed-path", "generic-path"])
def test_differing_copies_in_one_object_are_recorded_identical_ones_are_not(tmp_path, generic):
    pipe = new_pipe(tmp_path / "lake")
    first = put(T0 + MIN, IP, key="a.csv", event_id="w-1")
    forged = changed(first, requestParameters={"bucketName": "research-data-111122223333", "key": "forged.csv"})
    reordered = dict(reversed(list(first.items())))  # the same record, keys in another order
    recs = [first, forged, reordered, put(T0 + 2 * MIN, IP, event_id="w-2")]
    logon = saml_logon(T0, "alice@example.com", event_id="l-1")
    recs += [logon, changed(logon, sourceIPAddress="203.0.113.66")]
    if generic:  # a record the typed decoder refuses sends the whole object down the generic path
        recs.append({"eventName": 7})
    out = pipe.ingest_object(ct_name(1), corpus.ct(recs))
    assert out.reconciles and out.duplicates == 3
    rows = conflicts(pipe)
    assert [(r["event_id"], r["table_name"], r["hash_of"]) for r in rows] == [
        ("l-1", "logons", "record"), ("w-1", "s3_writes", "record")]
    w = next(r for r in rows if r["event_id"] == "w-1")
    assert w["kept_hash"] == record_hash(first) and w["other_hash"] == record_hash(forged)
    assert w["kept_source"] == w["other_source"] == ct_name(1)
    assert by_event(pipe.lake)["w-1"]["key"] == "a.csv"  # first wins


def test_differing_copies_across_objects_are_recorded_with_both_sources(tmp_path):
    pipe = new_pipe(tmp_path / "lake")
    first = put(T0 + MIN, IP, key="a.csv", event_id="w-1")
    pipe.ingest_object(ct_name(1), corpus.ct([first, put(T0 + 2 * MIN, IP, event_id="w-2")]))
    # a re-delivery in another object: identical, so only a duplicate
    out = pipe.ingest_object(ct_name(2), corpus.ct([first]))
    assert out.duplicates == 1 and conflicts(pipe) == []
    # then a copy whose content differs (another source IP), beside a new event
    forged = changed(first, sourceIPAddress="203.0.113.9")
    out = pipe.ingest_object(ct_name(3), corpus.ct([forged, put(T0 + 3 * MIN, IP, event_id="w-3")]))
    assert out.duplicates == 1 and out.written == 1 and out.reconciles
    (row,) = conflicts(pipe)
    assert (row["event_id"], row["table_name"], row["hash_of"]) == ("w-1", "s3_writes", "row")
    assert row["kept_source"] == ct_name(1) and row["other_source"] == ct_name(3)
    assert row["kept_hash"] != row["other_hash"]
    assert by_event(pipe.lake)["w-1"]["source_ip"] == IP  # first wins
    # the same object again is answered from its manifest: nothing is recorded twice
    pipe.ingest_object(ct_name(3), corpus.ct([forged, put(T0 + 3 * MIN, IP, event_id="w-3")]))
    assert len(conflicts(pipe)) == 1


def test_the_cli_summary_warns_of_conflicts(tmp_path):
    from click.testing import CliRunner

    from auditcorr_cli.main import main

    first = put(T0 + MIN, IP, key="a.csv", event_id="w-1")
    f = tmp_path / "in" / ct_name(1)
    f.parent.mkdir(parents=True)
    f.write_bytes(corpus.ct([first, changed(first, userAgent="someone else")]))
    r = CliRunner().invoke(main, ["ingest", "--lake", str(tmp_path / "lake"), str(f)])
    assert r.exit_code == 0 and "1 duplicate eventID(s) with different content" in r.output


def test_raw_and_parsed_hashes_agree():
    rec = put(T0, IP, event_id="w-1")
    assert raw_record_hash(orjson.dumps(rec)) == record_hash(rec)
    assert raw_record_hash(b'{"b": 1,   "a": 2}') == raw_record_hash(b'{"a":2,"b":1}')
    assert raw_record_hash(gzip.compress(b"x")) != raw_record_hash(b"x")
