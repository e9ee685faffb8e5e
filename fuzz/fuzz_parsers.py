"""Coverage-guided fuzzing of the CloudTrail and usage-report parsers (atheris / libFuzzer).

Run (from the repository root, in the dev venv; ``pip install atheris`` first):

    python fuzz/fuzz_parsers.py -atheris_runs=200000        # or: make fuzz
    python fuzz/fuzz_parsers.py -max_total_time=600         # ten minutes
    python fuzz/fuzz_parsers.py --parser=cloudtrail -max_total_time=600   # one parser only
    python fuzz/fuzz_parsers.py --parser=csv -max_total_time=600

With no corpus folder given it mutates ``fuzz/seeds`` and ``fuzz/regressions`` and keeps what it
learns in ``$TMPDIR/auditcorr-fuzz/corpus`` (crash inputs land in ``$TMPDIR/auditcorr-fuzz/``: copy
one into ``fuzz/regressions/`` once the bug is fixed).

Every input goes through ``parse_cloudtrail`` and ``parse_usage_report`` (sessions, applications
and unnamed), or through one of them with ``--parser``.  Each parser also runs with small limits
(an inflate cap of a few KiB, a CSV field limit of 64 characters), so the fuzzer reaches the
"too large" and "one huge field" paths with small inputs; and each CloudTrail input is also tried
as one gzip member appended to another (multi-member gzip) and, when it is JSON, as a JSON line
after a trail document (whole trail documents one per line).  The contract: only
``UnreadableObject`` (the whole object is unreadable and is quarantined) may escape; anything else
is a bug.  For what does parse, the record accounting must reconcile, the tables must have their
schema, and every event time must be inside the plausible window of its file.
``tests/hardening/test_fuzz_target.py`` replays the seeds through :func:`TestOneInput` so the target cannot rot.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "layers" / "core") not in sys.path:
    sys.path.insert(0, str(ROOT / "layers" / "core"))

try:  # atheris is only needed to fuzz; the seed replay test imports this module without it
    import atheris
except ImportError:  # pragma: no cover - exercised when atheris is absent
    atheris = None

if atheris is not None:
    with atheris.instrument_imports(include=["auditcorr"]):
        from auditcorr.config import Config
        from auditcorr.ingest.cloudtrail import UnreadableObject, parse_cloudtrail
        from auditcorr.ingest.plausible import plausible_ms, window
        from auditcorr.ingest.usage import parse_usage_report
        from auditcorr.schemas import APPLICATIONS, LOGONS, S3_WRITES, SESSIONS

        try:  # the typed fast path is imported lazily by parse_cloudtrail: instrument it too
            import auditcorr.ingest.cloudtrail_fast  # noqa: F401
        except ImportError:
            pass
else:
    from auditcorr.config import Config
    from auditcorr.ingest.cloudtrail import UnreadableObject, parse_cloudtrail
    from auditcorr.ingest.plausible import plausible_ms, window
    from auditcorr.ingest.usage import parse_usage_report
    from auditcorr.schemas import APPLICATIONS, LOGONS, S3_WRITES, SESSIONS

CONFIG = Config()
SEEDS = Path(__file__).resolve().parent / "seeds"  # small valid and near-valid inputs to mutate
REGRESSIONS = Path(__file__).resolve().parent / "regressions"  # inputs that once crashed a parser

CT_NAME = ("AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/"
           "111122223333_CloudTrail_us-east-1_20260302T0805Z_abcdefghijklmnop.json.gz")
REPORT_NAMES = (
    "appstream-logs/sessions/schedule=DAILY/year=2026/month=03/day=02/daily-session-report-2026-03-02.csv",
    "appstream-logs/applications/schedule=DAILY/year=2026/month=03/day=02/daily-app-report-2026-03-02.csv",
    "upload/report.csv",  # kind decided by the header
)


SMALL_CAP = 4096  # an inflate cap the fuzzer can exceed with small inputs
SMALL_FIELD = 64  # a CSV field limit the fuzzer can exceed with small inputs
TRAIL_LINE = b'{"Records":[{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"PutObject",' \
             b'"eventTime":"2026-03-02T08:01:00Z","eventID":"line-1","userIdentity":{"type":"AssumedRole"}}]}'
#: which parsers run (``--parser=cloudtrail|csv``; both by default)
PARSERS = {"cloudtrail", "csv"}


def _check_cloudtrail(data: bytes) -> None:
    _check_cloudtrail_once(data, None)
    _check_cloudtrail_once(data, SMALL_CAP)
    if data[:2] == b"\x1f\x8b":  # a second gzip member: multi-member objects read like one
        _check_cloudtrail_once(data + gzip.compress(TRAIL_LINE, mtime=0), None)
    elif data[:1] in (b"{", b"["):  # whole trail documents one per line
        _check_cloudtrail_once(TRAIL_LINE + b"\n" + data, None)


def _check_cloudtrail_once(data: bytes, cap: int | None) -> None:
    try:
        if cap is None:
            parsed = parse_cloudtrail(data, CT_NAME, CONFIG)
        else:
            parsed = parse_cloudtrail(data, CT_NAME, CONFIG, max_inflated=cap)
    except UnreadableObject:
        return
    out = parsed.outcome
    assert parsed.writes.schema.remove_metadata() == S3_WRITES.remove_metadata()
    assert parsed.logons.schema.remove_metadata() == LOGONS.remove_metadata()
    rows = parsed.writes.num_rows + parsed.logons.num_rows
    # the pipeline sets ``written`` when it loads the rows; here every row is a would-be write
    assert out.records_in == rows + out.duplicates + out.skipped + out.rejected, out.as_dict()
    assert parsed.writes.column("event_time").null_count == 0
    assert parsed.logons.column("event_time").null_count == 0
    assert parsed.writes.column("event_id").null_count == 0
    lo, hi, _ = window(CT_NAME)
    for table in (parsed.writes, parsed.logons):
        if table.num_rows:
            ms = table.column("event_time").cast("int64").to_pylist()
            assert all(lo <= t <= hi for t in ms), "an implausible event time was accepted"


def _check_report(data: bytes, name: str, field_limit: int | None = None) -> None:
    try:
        if field_limit is None:
            rep = parse_usage_report(data, name)
        else:
            rep = parse_usage_report(data, name, max_field_chars=field_limit, max_inflated=SMALL_CAP)
    except UnreadableObject:
        return
    out = rep.outcome
    assert out.reconciles, out.as_dict()
    assert out.written == rep.table.num_rows
    expected = SESSIONS if rep.kind == "sessions_report" else APPLICATIONS
    assert rep.table.schema.remove_metadata() == expected.remove_metadata()
    if rep.kind == "sessions_report" and rep.table.num_rows:
        start = rep.table.column("session_start_time").cast("int64").to_pylist()
        end = rep.table.column("session_end_time").cast("int64").to_pylist()
        assert all(s is not None and e is not None and s <= e for s, e in zip(start, end, strict=True))
        assert all(plausible_ms(t) for t in start + end), "an implausible session time was accepted"
    if rep.report_date is not None:
        from datetime import date

        date.fromisoformat(rep.report_date)  # a real calendar day: it becomes a partition name


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the libFuzzer entry point's name
    if "cloudtrail" in PARSERS:
        _check_cloudtrail(data)
    if "csv" in PARSERS:
        for name in REPORT_NAMES:
            _check_report(data, name)
        _check_report(data, REPORT_NAMES[0], SMALL_FIELD)


def seeds() -> list[Path]:
    return sorted(p for d in (SEEDS, REGRESSIONS) for p in d.iterdir() if p.is_file())


def main() -> None:
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris")
    import tempfile

    argv = [a for a in sys.argv if not a.startswith("--parser=")]
    for a in sys.argv:
        if a.startswith("--parser="):
            chosen = a.split("=", 1)[1]
            if chosen not in ("cloudtrail", "csv"):
                sys.exit("--parser must be cloudtrail or csv")
            PARSERS.intersection_update({chosen})
    work = Path(tempfile.gettempdir()) / ("auditcorr-fuzz" + ("" if len(PARSERS) == 2 else f"-{min(PARSERS)}"))
    if not any(not a.startswith("-") for a in argv[1:]):
        # libFuzzer adds new inputs to the FIRST folder: keep that out of the repository
        (work / "corpus").mkdir(parents=True, exist_ok=True)
        argv += [str(work / "corpus"), str(SEEDS), str(REGRESSIONS)]
    if not any(a.startswith("-artifact_prefix=") for a in argv[1:]):
        work.mkdir(parents=True, exist_ok=True)
        argv.append(f"-artifact_prefix={work}/")
    atheris.Setup(argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
