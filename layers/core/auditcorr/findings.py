"""Signals into findings: suppressions, grouping, and the finding life cycle.

Pure and columnar.  A *signal* is an ``alerts`` row (one per rule and subject).  A *finding* is every
signal of one rule with the same grouping key (the rule's ``group_by`` fields, with ``account_id``
when the signal carries one) whose event falls in the same dedup window::

    window_start = floor(event_time / dedup) * dedup          (UTC, aligned to the epoch)
    finding_id   = H(rule, account_id, group key, window_start)

so a signal's finding is a function of the signal alone: re-ingesting, retrying or re-ordering the
input cannot move a signal to another finding, and a finding's state is recomputed from its signals'
latest rows (never incremented), so it converges to the same value whatever the order of arrival.
The price of fixed windows: a burst that straddles a window boundary is two findings (see
docs/reliability.md); choose ``dedup_minutes`` per rule accordingly.

Suppression: the first ``[[suppress]]`` entry that matches a signal sets its ``suppressed_by``; the
signal is kept, counted apart (``suppressed_count``) and never published.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .attribution import classify_ips
from .config import SEVERITIES, Config, Suppression
from .rules import CLOSED, OPEN, RULES
from .schemas import ALERTS, FINDINGS, TS, conform

SUPPRESSED = "suppressed"
SAMPLE_SIZE = 10
#: the finding columns that can hold a grouping key's value (a rule's ``group_by`` is among them)
KEY_COLUMNS = ("claimed_session_id", "principal_arn", "source_ip", "user_id")
#: what the aggregation yields (FINDINGS without the columns the merge with earlier versions sets)
_STATE_COLUMNS = [f.name for f in FINDINGS if f.name not in ("previous_status", "previous_updated_at", "status_since",
                                                              "created_at", "updated_at")]
_ACCOUNT = r"^arn:[^:]*:[^:]*:[^:]*:(?P<account>\d{12}):"


def _strings(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return arr.cast(pa.string())


def account_column(signals: pa.Table) -> pa.Array:
    """The signal's account: its ``account_id`` column when the table has one (issue 15), else null."""
    if "account_id" in signals.column_names:
        return _strings(signals.column("account_id"))
    return pa.nulls(signals.num_rows, pa.string())


# -- suppressions -----------------------------------------------------------------------------
def _like(glob: str) -> str:
    return glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")


def suppression_mask(signals: pa.Table, entry: Suppression, fleet_cidrs: tuple[str, ...] = ()) -> np.ndarray:
    """Which signals ``entry`` matches (every matcher it names; expiry against the event time)."""
    n = signals.num_rows
    mask = np.ones(n, dtype=bool)

    def eq(col: str, value: str) -> np.ndarray:
        return np.asarray(pc.fill_null(pc.equal(_strings(signals.column(col)), value), False)
                          .to_numpy(zero_copy_only=False))

    if entry.rule != "*":
        mask &= eq("rule", entry.rule)
    if entry.account is not None:
        acct = account_column(signals)
        from_arn = pc.struct_field(pc.extract_regex(_strings(signals.column("principal_arn")), _ACCOUNT), [0])
        acct = pc.coalesce(acct, from_arn)
        mask &= np.asarray(pc.fill_null(pc.equal(acct, entry.account), False).to_numpy(zero_copy_only=False))
    if entry.principal is not None:
        hit = pc.match_like(_strings(signals.column("principal_arn")), _like(entry.principal))
        mask &= np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False))
    if entry.bucket is not None:
        mask &= eq("bucket", entry.bucket)
    if entry.key_prefix is not None:
        hit = pc.starts_with(_strings(signals.column("key")), entry.key_prefix)
        mask &= np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False))
    if entry.user is not None:
        mask &= eq("user_id", entry.user)
    if entry.source is not None:
        _, inside, _ = classify_ips(_strings(signals.column("source_ip")), (entry.source,))
        mask &= np.asarray(inside, dtype=bool)
    if entry.expires_ms is not None:
        t = signals.column("event_time").cast(pa.int64())
        mask &= np.asarray(pc.fill_null(pc.less(t, entry.expires_ms), False).to_numpy(zero_copy_only=False))
    return mask


def suppressed_by(signals: pa.Table, suppressions: Iterable[Suppression]) -> pa.Array:
    """Per signal, the id of the first entry that matches it (null: none)."""
    out = np.full(signals.num_rows, None, dtype=object)
    for entry in suppressions:
        free = np.array([v is None for v in out], dtype=bool)
        if not free.any():
            break
        hit = suppression_mask(signals, entry) & free
        out[hit] = entry.id
    return pa.array(out.tolist(), pa.string())


# -- grouping ---------------------------------------------------------------------------------
def _group_by(rule: str) -> tuple[str, ...]:
    """The rule's grouping key; a signal of a rule this registry does not declare (another module's
    alerts) is a finding of its own (its event)."""
    return RULES[rule].group_by if rule in RULES else ("event_id",)


def group_key(signals: pa.Table) -> pa.Array:
    """Per signal, its rule's grouping key as ``field=value; ...`` (``-`` for a missing value)."""
    rules = _strings(signals.column("rule"))
    out = pa.nulls(signals.num_rows, pa.string())
    for rule in pc.unique(rules).to_pylist():
        fields = _group_by(rule)
        parts = [pc.binary_join_element_wise(f"{f}=", pc.fill_null(_strings(signals.column(f)), "-"), "")
                 for f in fields]
        key = pc.binary_join_element_wise(*parts, "; ") if len(parts) > 1 else parts[0]
        out = pc.if_else(pc.equal(rules, rule), key, out)
    return out


def window_starts(signals: pa.Table, config: Config) -> pa.Array:
    """Per signal, the start of its dedup window (epoch ms)."""
    t = signals.column("event_time").cast(pa.int64()).to_numpy(zero_copy_only=False)
    size = np.array([config.dedup_ms(r) for r in _strings(signals.column("rule")).to_pylist()], dtype=np.int64) \
        if signals.num_rows else np.zeros(0, dtype=np.int64)
    return pa.array((t // size) * size, pa.int64())


def finding_ids(signals: pa.Table, config: Config) -> pa.Array:
    """Per signal, its finding: ``H(rule, account, key, window start)`` (hashed once per distinct finding)."""
    if signals.num_rows == 0:
        return pa.array([], pa.string())
    subject = pc.binary_join_element_wise(
        _strings(signals.column("rule")), pc.fill_null(account_column(signals), ""), group_key(signals),
        window_starts(signals, config).cast(pa.string()), "|")
    uniq = pc.unique(subject)
    hashed = pa.array([hashlib.sha256(f"auditcorr/finding/v1|{s}".encode()).hexdigest()[:32]
                       for s in uniq.to_pylist()], pa.string())
    return hashed.take(pc.index_in(subject, value_set=uniq))


def assign(signals: pa.Table, config: Config) -> pa.Table:
    """``signals`` (ALERTS or ALERT_IN) with ``suppressed_by`` and ``finding_id`` set from ``config``."""
    out = signals
    for name, col in (("suppressed_by", suppressed_by(signals, config.suppressions)),
                      ("finding_id", finding_ids(signals, config))):
        i = out.schema.get_field_index(name)
        out = out.set_column(i, out.schema.field(i), col) if i >= 0 else out.append_column(name, col)
    return out


# -- the state of findings from their signals -------------------------------------------------
_SEV_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def aggregate(signals: pa.Table, config: Config) -> pa.Table:
    """One row per finding (its current state) from the LATEST row of every one of its signals.

    status: open if any open signal is unsuppressed, else suppressed if any open signal is
    suppressed, else closed.  The counted signals (count, first/last, sample) are the ones that make
    the status: open unsuppressed, open suppressed, or (closed) every retracted one."""
    sig = conform(signals, ALERTS).filter(pc.is_valid(signals.column("finding_id"))) \
        if signals.num_rows else conform(signals, ALERTS)
    if sig.num_rows == 0:
        return conform(FINDINGS.empty_table(), pa.schema([FINDINGS.field(c) for c in _STATE_COLUMNS]))
    is_open = pc.fill_null(pc.equal(sig.column("status"), OPEN), False).to_numpy(zero_copy_only=False)
    supp = sig.column("suppressed_by").is_valid().to_numpy(zero_copy_only=False)
    # class: 2 open unsuppressed, 1 open suppressed, 0 retracted; a finding's class is its best signal's
    cls = np.where(is_open & ~supp, 2, np.where(is_open, 1, 0)).astype(np.int8)
    fid = sig.column("finding_id").combine_chunks()
    uniq = pc.unique(fid)
    code = pc.index_in(fid, value_set=uniq).to_numpy(zero_copy_only=False)
    best = np.zeros(len(uniq), dtype=np.int8)
    np.maximum.at(best, code, cls)
    n_supp = np.bincount(code, weights=(is_open & supp).astype(np.int64), minlength=len(uniq)).astype(np.int64)
    counted = np.flatnonzero(cls == best[code])
    # the narrow columns of the counted signals, earliest first, deterministic: (finding, event_time, event_id);
    # the wide ones (description, title, keys) are taken for each finding's first signal only
    narrow = sig.select(["event_time", "event_id", "severity", "suppressed_by", "status_reason"]).take(counted)
    ccode = code[counted]
    keys = pa.table({"code": pa.array(ccode), "t": narrow.column("event_time"), "ev": narrow.column("event_id")})
    order = pc.sort_indices(keys, sort_keys=[("code", "ascending"), ("t", "ascending"), ("ev", "ascending")])
    c, ccode, pos = narrow.take(order), ccode[order.to_numpy()], counted[order.to_numpy()]
    t = c.column("event_time").cast(pa.int64()).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, ccode[1:] != ccode[:-1]])
    ends = np.r_[starts[1:], len(ccode)]
    groups = ccode[starts]  # finding codes in output order
    first_row = sig.take(pa.array(pos[starts]))
    last_t = t[ends - 1]
    sev_pos = pc.index_in(c.column("severity"), value_set=pa.array(SEVERITIES, pa.string()))
    sev = np.asarray(pc.fill_null(sev_pos, _SEV_RANK["MEDIUM"]).to_numpy(zero_copy_only=False), dtype=np.int64)
    sev_max = np.maximum.reduceat(sev, starts) if len(starts) else sev
    ev_ids = c.column("event_id").to_pylist()
    samples = [ev_ids[s: min(e, s + SAMPLE_SIZE)] for s, e in zip(starts, ends, strict=True)]
    rules_ = first_row.column("rule").to_pylist()
    wstart = window_starts(first_row, config).to_numpy(zero_copy_only=False)
    wend = wstart + np.array([config.dedup_ms(r) for r in rules_], dtype=np.int64)
    status = np.array([OPEN if b == 2 else SUPPRESSED if b == 1 else CLOSED for b in best[groups]], dtype=object)
    count = (ends - starts).astype(np.int64)
    reasons: list[str | None] = []
    sup_ids = c.column("suppressed_by").to_pylist()
    st_reasons = c.column("status_reason").to_pylist()
    for k, (s, e) in enumerate(zip(starts, ends, strict=True)):
        if status[k] == SUPPRESSED:
            reasons.append("suppressed by " + ", ".join(sorted({x for x in sup_ids[s:e] if x})))
        elif status[k] == CLOSED:
            why = next((r for r in reversed(st_reasons[s:e]) if r), None)
            reasons.append("every signal retracted" + (f": {why}" if why else ""))
        else:
            reasons.append(None)
    keys = group_key(first_row).to_pylist()
    descriptions = first_row.column("description").to_pylist()
    first_t = t[starts]
    desc = []
    for k in range(len(starts)):
        span = (f"{_iso(first_t[k])}" if first_t[k] == last_t[k] else f"{_iso(first_t[k])} .. {_iso(last_t[k])}")
        desc.append(f"{count[k]} signal(s) of {rules_[k]} for {keys[k]} at {span}. "
                    f"Earliest: {descriptions[k]}")
    key_cols = {}
    for col in KEY_COLUMNS:
        vals = first_row.column(col).to_pylist()
        key_cols[col] = pa.array([v if col in _group_by(r) else None for v, r in zip(vals, rules_, strict=True)],
                                 pa.string())
    out = pa.table({
        "finding_id": first_row.column("finding_id"),
        "rule": first_row.column("rule"),
        "severity": pa.array([SEVERITIES[i] for i in sev_max], pa.string()),
        "status": pa.array(status.tolist(), pa.string()),
        "status_reason": pa.array(reasons, pa.string()),
        "account_id": account_column(first_row),
        "group_key": pa.array(keys, pa.string()),
        **key_cols,
        "window_start": pa.array(wstart, pa.int64()).cast(TS),
        "window_end": pa.array(wend, pa.int64()).cast(TS),
        "first_event_time": pa.array(first_t, pa.int64()).cast(TS),
        "last_event_time": pa.array(last_t, pa.int64()).cast(TS),
        "event_count": pa.array(count, pa.int64()),
        "suppressed_count": pa.array(n_supp[groups], pa.int64()),
        "sample_event_ids": pa.array(samples, pa.list_(pa.string())),
        "title": first_row.column("title"),
        "description": pa.array(desc, pa.string()),
    })
    return conform(out, pa.schema([FINDINGS.field(col) for col in _STATE_COLUMNS]))


def _iso(ms: int) -> str:
    return str(np.datetime64(int(ms), "ms")).replace("T", " ")[:19] + "Z"


#: the columns whose change makes a new version of a finding
_COMPARED = ("status", "status_reason", "severity", "event_count", "suppressed_count", "first_event_time",
             "last_event_time", "sample_event_ids", "description")


#: why a finding with no signal left closes (its signals now belong to other findings)
EMPTIED = "no signal left: its signals now belong to other findings (dedup window or grouping changed)"


def merge(previous: pa.Table, state: pa.Table, now_ms: int) -> pa.Table:
    """The finding rows to append: ``state`` rows (from :func:`aggregate`) that differ from the
    ``previous`` latest version of their finding (FINDINGS rows), with the version columns set.  A
    finding never written whose state is closed is not written (nothing to retract).  A previous
    finding that is not closed and has no state (none of its signals names it any more: the
    configuration regrouped them) closes."""
    prev = conform(previous, FINDINGS)
    new = conform(state, FINDINGS)
    orphan = pc.and_(pc.invert(pc.is_in(prev.column("finding_id"), value_set=new.column("finding_id"))),
                     pc.fill_null(pc.not_equal(prev.column("status"), CLOSED), True))
    orphans = prev.filter(orphan)
    if orphans.num_rows:
        orphans = orphans.set_column(orphans.schema.get_field_index("status"), FINDINGS.field("status"),
                                     pa.array([CLOSED] * orphans.num_rows, pa.string()))
        orphans = orphans.set_column(orphans.schema.get_field_index("status_reason"), FINDINGS.field("status_reason"),
                                     pa.array([EMPTIED] * orphans.num_rows, pa.string()))
        new = pa.concat_tables([new, orphans])
    if new.num_rows == 0:
        return FINDINGS.empty_table()
    pos = pc.index_in(new.column("finding_id"), value_set=prev.column("finding_id"))
    found = pc.is_valid(pos).to_numpy(zero_copy_only=False)
    old = prev.take(pos)
    changed = ~found
    for col in _COMPARED:
        changed |= found & _differs(old.column(col), new.column(col))
    changed &= found | np.asarray(pc.fill_null(pc.not_equal(new.column("status"), CLOSED), True)
                                  .to_numpy(zero_copy_only=False), dtype=bool)
    if not changed.any():
        return FINDINGS.empty_table()
    now = pa.scalar(now_ms, pa.int64()).cast(TS)
    old_upd = old.column("updated_at")
    upd = pc.if_else(pc.fill_null(pc.greater(now, old_upd), True), now,
                     pc.add(old_upd, pa.scalar(1, pa.duration("ms"))))
    old_status = old.column("status")
    same_status = pc.fill_null(pc.equal(old_status, new.column("status")), False)
    cols = {
        "previous_status": old_status,
        "previous_updated_at": old_upd,
        "status_since": pc.if_else(same_status, old.column("status_since"), upd),
        "created_at": pc.if_else(pa.array(found), old.column("created_at"), upd),
        "updated_at": upd,
    }
    out = new
    for name, col in cols.items():
        i = out.schema.get_field_index(name)
        out = out.set_column(i, out.schema.field(i), col.cast(out.schema.field(i).type))
    return out.filter(pa.array(changed)).replace_schema_metadata(FINDINGS.metadata)


def _differs(a: pa.ChunkedArray, b: pa.ChunkedArray) -> np.ndarray:
    """``a != b`` row by row, None equal to None (lists compared by their joined text)."""
    if pa.types.is_list(a.type):
        a, b = (pc.binary_join(x, "\x1f") for x in (a, b))
    eq = pc.fill_null(pc.equal(a, b), False)
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    return ~np.asarray(pc.or_(eq, both_null).to_numpy(zero_copy_only=False), dtype=bool)


def latest(findings: pa.Table) -> pa.Table:
    """One row per finding: the greatest ``updated_at`` (``Lake.read`` already keeps it)."""
    if findings.num_rows < 2:
        return findings
    t = findings.sort_by([("finding_id", "ascending"), ("updated_at", "descending")])
    fid = t.column("finding_id").to_numpy(zero_copy_only=False)
    keep = np.r_[True, fid[1:] != fid[:-1]]
    return t.filter(pa.array(keep))


def announcement(status: str | None, previous_status: str | None, updated_ms: int | None,
                 previous_updated_ms: int | None, update_ms: int) -> str | None:
    """What a finding version tells its subscribers: ``open`` (it opened), ``update`` (it grew, at
    most once per ``update_ms`` window of the pipeline clock), ``close`` (closed or suppressed after
    being open), or None (nothing to say).  A pure function of the row: a retried or re-delivered
    file gives the same answer."""
    if status == OPEN:
        if previous_status != OPEN:
            return "open"
        if update_ms <= 0 or updated_ms is None or previous_updated_ms is None:
            return "update"
        return "update" if updated_ms // update_ms != previous_updated_ms // update_ms else None
    if previous_status == OPEN:
        return "close"
    return None
