"""Coverage-guided fuzzing of the CloudTrail and usage-report parsers (atheris / libFuzzer).

Run (from the repository root, in the dev venv; ``pip install atheris`` first):

    python fuzz/fuzz_parsers.py -atheris_runs=200000        # or: make fuzz
    python fuzz/fuzz_parsers.py -max_total_time=600         # ten minutes

With no corpus folder given it mutates ``fuzz/seeds`` and ``fuzz/regressions`` and keeps what it
learns in ``$TMPDIR/auditcorr-fuzz/corpus`` (crash inputs land in ``$TMPDIR/auditcorr-fuzz/``: copy
one into ``fuzz/regressions/`` once the bug is fixed).

Every input goes through ``parse_cloudtrail`` and ``parse_usage_report`` (sessions, applications
and unnamed).  The contract: only ``UnreadableObject`` (the whole object is unreadable and is
quarantined) may escape; anything else is a bug.  For what does parse, the record accounting must
reconcile and the tables must have their schema.  ``tests/hardening/test_fuzz_target.py`` replays
the seeds through :func:`TestOneInput` so the target cannot rot.
"""

from __future__ import annotations

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
        from auditcorr.ingest.usage import parse_usage_report
        from auditcorr.schemas import APPLICATIONS, LOGONS, S3_WRITES, SESSIONS

        try:  # the typed fast path is imported lazily by parse_cloudtrail: instrument it too
            import auditcorr.ingest.cloudtrail_fast  # noqa: F401
        except ImportError:
            pass
else:
    from auditcorr.config import Config
    from auditcorr.ingest.cloudtrail import UnreadableObject, parse_cloudtrail
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


def _check_cloudtrail(data: bytes) -> None:
    try:
        parsed = parse_cloudtrail(data, CT_NAME, CONFIG)
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


def _check_report(data: bytes, name: str) -> None:
    try:
        rep = parse_usage_report(data, name)
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
    if rep.report_date is not None:
        from datetime import date

        date.fromisoformat(rep.report_date)  # a real calendar day: it becomes a partition name


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the libFuzzer entry point's name
    _check_cloudtrail(data)
    for name in REPORT_NAMES:
        _check_report(data, name)


def seeds() -> list[Path]:
    return sorted(p for d in (SEEDS, REGRESSIONS) for p in d.iterdir() if p.is_file())


def main() -> None:
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris")
    import tempfile

    argv = list(sys.argv)
    work = Path(tempfile.gettempdir()) / "auditcorr-fuzz"
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
