"""Record accounting: every input record is written, a duplicate, skipped or rejected (with a reason)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class FileOutcome:
    """What happened to one input object and to each of its records."""

    source: str
    kind: str  # cloudtrail | sessions_report | applications_report | digest | insight | unknown
    records_in: int = 0
    written: int = 0
    duplicates: int = 0
    skipped: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    #: set when the whole object could not be read; the object is quarantined with this reason
    error: str | None = None
    #: the object was recognised and deliberately not processed (digest files, already ingested)
    note: str | None = None
    #: duplicates whose content differs from the copy kept: (table, event_id, kept source, kept hash,
    #: other source, other hash, what was hashed) -- the ``event_id_conflicts`` rows
    conflicts: list[tuple[str, str, str, str, str, str, str]] = field(default_factory=list)

    def reject(self, reason: str, n: int = 1) -> None:
        self.rejected += n
        self.reasons[reason] += n

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped += n
        self.reasons[f"skipped: {reason}"] += n

    @property
    def reconciles(self) -> bool:
        return self.records_in == self.written + self.duplicates + self.skipped + self.rejected

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "kind": self.kind,
            "records_in": self.records_in,
            "written": self.written,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "rejected": self.rejected,
            "reasons": dict(self.reasons),
            "error": self.error,
            "note": self.note,
            "conflicts": len(self.conflicts),
        }


@dataclass
class IngestSummary:
    files: list[FileOutcome] = field(default_factory=list)
    recomputed_days: list[str] = field(default_factory=list)
    alerts_opened: int = 0
    alerts_closed: int = 0
    findings_opened: int = 0
    findings_closed: int = 0

    def by_kind(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for f in self.files:
            row = out.setdefault(
                f.kind,
                {"files": 0, "files_rejected": 0, "records_in": 0, "written": 0, "duplicates": 0,
                 "skipped": 0, "rejected": 0},
            )
            row["files"] += 1
            row["files_rejected"] += 1 if f.error else 0
            row["records_in"] += f.records_in
            row["written"] += f.written
            row["duplicates"] += f.duplicates
            row["skipped"] += f.skipped
            row["rejected"] += f.rejected
        return out

    @property
    def reconciles(self) -> bool:
        return all(f.reconciles for f in self.files)

    def reasons(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.reasons)
            if f.error:
                total[f"file rejected: {f.error}"] += 1
        return total
