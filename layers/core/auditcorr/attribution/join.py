"""The attribution join: S3 writes x sessions (IP + time window) x logons, step by step.

Pure: Arrow tables in, Arrow tables out, time passed in.  Works on columns (NumPy over Arrow
buffers), never on per-row Python objects, except for the small sets it must (distinct IPs,
distinct claimed ids, attributed sessions).

Rules (see README "Attribution"):
- in scope: the write's role is one of ``config.roles``; others are not attributed at all.
- ``external``: the source is not an IP inside ``config.fleet_cidrs``.
- candidates: sessions with ``eni_private_ip_address == source_ip`` and
  ``start - tolerance <= event_time <= end + tolerance``.
- a claimed session id among the candidates settles the choice; otherwise sessions whose own
  window contains the event beat those matched only through the tolerance.
- one left: ``attributed``; several: ``ambiguous``; none: ``pending`` until the sessions reports
  covering the event are in, then ``unattributed``.

:func:`attribute` runs the steps in that order; each step is a function of its own below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow import epoch_ms, masked_take, one_array
from ..config import Config
from ..schemas import ATTRIBUTED_ACTIVITY, S3_WRITES, TS, conform
from .addresses import in_networks, normalise_ips, through_credentials
from .candidates import candidate_pairs_coded, equal_pairs
from .claims import extract_claims
from .logons import match_logons
from .model import DAY_MS, MATCH_LABELS, STATUSES, AttributionResult, Coverage, Match
from .scope import Scopes, scoped_addresses, session_scope_columns

_STATUS = {name: code for code, name in enumerate(STATUSES)}


@dataclass
class Candidates:
    """Every (write, session) pair the window admits, and which of them the choice keeps."""

    write_idx: np.ndarray  # per pair: the write
    session_idx: np.ndarray  # per pair: the session
    strict: np.ndarray  # per pair: the session's own window contains the event
    per_write: np.ndarray  # per write: how many candidates
    claimed: np.ndarray  # per write: how many candidates are the claimed session (0 or 1)
    strict_per_write: np.ndarray  # per write: how many candidates contain the event
    kept_per_write: np.ndarray  # per write: how many candidates the choice keeps
    chosen: np.ndarray  # per write: the one kept session, or -1


def in_scope(writes: pa.Table, config: Config) -> pa.Table:
    """The writes signed by one of the configured roles; the others are not attributed."""
    mask = pc.fill_null(pc.is_in(writes.column("role_arn"), pa.array(list(config.roles), pa.string())), False)
    if pc.all(mask).as_py():  # (filtering copies every column: skip it when all are in)
        return writes
    return writes.filter(mask)


def choose(write_idx: np.ndarray, session_idx: np.ndarray, strict: np.ndarray, claims: pa.Array,
           session_ids: pa.Array, n: int) -> Candidates:
    """A claimed id among the candidates settles the choice; otherwise the sessions whose own window
    contains the event beat those matched only through the tolerance."""
    per_write: np.ndarray
    claimed: np.ndarray
    strict_per_write: np.ndarray
    if len(write_idx):
        # compare the claimed id with the candidate's id pair by pair, 8 bytes at a time (cheaper
        # than hashing every claim into the session ids)
        is_claimed = equal_pairs(claims, write_idx, session_ids, session_idx)
        per_write = np.bincount(write_idx, minlength=n)
        claimed = np.bincount(write_idx, weights=is_claimed, minlength=n)
        strict_per_write = np.bincount(write_idx, weights=strict, minlength=n)
    else:
        is_claimed = np.zeros(0, bool)
        per_write, claimed, strict_per_write = np.zeros(n, np.int64), np.zeros(n), np.zeros(n)
    no_claim = claimed[write_idx] == 0
    keep = is_claimed | (no_claim & strict) | (no_claim & (strict_per_write[write_idx] == 0))
    kept_w, kept_s = write_idx[keep], session_idx[keep]
    kept_per_write = np.bincount(kept_w, minlength=n) if len(kept_w) else np.zeros(n, np.int64)
    chosen = np.full(n, -1, dtype=np.int64)
    single = kept_per_write[kept_w] == 1
    chosen[kept_w[single]] = kept_s[single]
    return Candidates(write_idx, session_idx, strict, per_write, claimed, strict_per_write, kept_per_write, chosen)


def finality(event_ms: np.ndarray, scope_code: np.ndarray, scope_keys: pa.Array, config: Config,
             coverage: Coverage) -> tuple[np.ndarray, np.ndarray]:
    """Per write: (are the reports covering it in?, is its own day's report overdue?).  A write is
    final once its scope's reports for day(t - tol) .. day(t + longest session + tol) are in
    (``Coverage.covered``); computed once per distinct (scope, day range)."""
    n = len(event_ms)
    if n == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    tol = config.tolerance_seconds * 1000
    own = event_ms // DAY_MS
    first_day = (event_ms - tol) // DAY_MS
    last_day = (event_ms + int(config.max_session_hours * 3_600_000) + tol) // DAY_MS
    scopes = scope_keys.to_pylist()
    # one int64 per (scope, own day, window): windows are a few days wide, days fit in 2**24
    lo, hi = own - first_day, last_day - own
    span = int(max(lo.max(), hi.max())) + 1
    combo = (((np.maximum(scope_code, -1) + 1) << 24) + own) * span * span + lo * span + hi
    enc = pc.dictionary_encode(pa.array(combo))  # hashing: no sort of the writes
    uniq = enc.dictionary.to_numpy()
    inv = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    final = np.zeros(len(uniq), dtype=bool)
    overdue = np.zeros(len(uniq), dtype=bool)
    for j, c in enumerate(uniq.tolist()):
        key, rest = divmod(c, span * span)
        sc, d = (key >> 24) - 1, key & ((1 << 24) - 1)
        if sc < 0:
            continue
        final[j] = coverage.covered(scopes[sc], d, d - rest // span, d + rest % span)
        overdue[j] = not final[j] and coverage.overdue(scopes[sc], d)
    inv = inv.reshape(-1)
    return final[inv], overdue[inv]


def statuses(in_fleet: np.ndarray, cand: Candidates, final: np.ndarray, service: np.ndarray | None = None) -> pa.Array:
    """``service``: per write, a service made the call for the principal (``invokedBy``) from a source
    that is not an address: ``via_service``, not ``external``."""
    code = np.full(len(in_fleet), _STATUS["external"], dtype=np.int8)
    if service is not None:
        code[service] = _STATUS["via_service"]
    none = in_fleet & (cand.per_write == 0)
    code[none] = _STATUS["unattributed"]
    code[none & ~final] = _STATUS["pending"]
    code[in_fleet & (cand.kept_per_write == 1)] = _STATUS["attributed"]
    code[in_fleet & (cand.kept_per_write > 1)] = _STATUS["ambiguous"]
    return pa.array(np.array(STATUSES, dtype=object)).take(pa.array(code))


def match_kinds(in_fleet: np.ndarray, cand: Candidates, via_nat: np.ndarray,
                placed: np.ndarray | None = None) -> pa.Array:
    """``placed``: writes a service made, placed at the address its credentials were used from
    (:func:`~.addresses.through_credentials`): ``credentials`` whatever chose among the candidates."""
    code = np.full(len(in_fleet), Match.NONE, dtype=np.int8)
    has = in_fleet & (cand.kept_per_write >= 1)
    code[has & (cand.claimed > 0)] = Match.CLAIM
    code[has & (cand.claimed == 0) & (cand.strict_per_write > 0)] = Match.WINDOW
    code[has & (cand.claimed == 0) & (cand.strict_per_write == 0)] = Match.TOLERANCE
    code[~in_fleet & via_nat] = Match.NAT
    if placed is not None:
        code[has & placed] = Match.CREDENTIALS
    return MATCH_LABELS.take(pa.array(code))


def fleet_membership(scopes: Scopes, group: np.ndarray, ips: pa.Array,
                     ip_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per write: (its address is in its scope's fleet subnets, in its scope's NAT egress).

    One gather over all writes: a membership row per distinct CIDR list (an organisation's groups
    usually share one range) by address code, the row chosen by the write's group."""
    def member(cidr_lists: list[tuple[str, ...]]) -> np.ndarray:
        rows: dict[tuple[str, ...], int] = {(): 0}
        table = [np.zeros(len(ips) + 1, dtype=bool)]  # row 0: no group, or no CIDRs; last column: not an address
        of_group = np.zeros(len(cidr_lists) + 1, dtype=np.int64)  # last entry: a write of no group (-1)
        for g, cidrs in enumerate(cidr_lists):
            if cidrs not in rows:
                rows[cidrs] = len(table)
                table.append(np.append(in_networks(ips, cidrs), False))
            of_group[g] = rows[cidrs]
        return np.stack(table)[of_group[group], ip_code]

    if len(group) == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    return member([f.cidrs for f in scopes.groups]), member([f.nat_cidrs for f in scopes.groups])


def session_keys(sessions: pa.Table, scopes: Scopes) -> pa.Table:
    """The sessions' side of the join: ``<scope>|<address>`` per session (null: no valid address)."""
    if sessions.num_rows == 0:
        return sessions
    account, region = session_scope_columns(sessions)
    keys, code, _ = scopes.keys(account, region)
    ips, ip_code = normalise_ips(sessions.column("eni_private_ip_address"))
    skeys, scode = scoped_addresses(keys, code, ips, ip_code, np.ones(sessions.num_rows, dtype=bool))
    return pa.table({"eni_private_ip_address": skeys.take(pa.array(scode, mask=scode < 0)),
                     "session_start_time": sessions.column("session_start_time"),
                     "session_end_time": sessions.column("session_end_time")})


def _list_array(owner: np.ndarray, n: int, values: pa.Array) -> pa.Array:
    """A list per row ``0 .. n-1`` holding the ``values`` whose ``owner`` is that row (owners sorted)."""
    counts = np.bincount(owner, minlength=n) if len(owner) else np.zeros(n, np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def candidate_lists(cand: Candidates, sessions: pa.Table, session_ids: pa.Array, n: int) -> tuple[pa.Array, pa.Array]:
    """(user ids, session ids) of every candidate per write, sorted by session id.  Ordered by a
    precomputed rank of the session ids instead of comparing strings per pair."""
    if len(cand.write_idx):
        rank = np.empty(sessions.num_rows, dtype=np.int64)
        rank[pc.sort_indices(session_ids).to_numpy()] = np.arange(sessions.num_rows)
        # one int64 key (write, rank): pairs arrive in a few runs already sorted by write, which a
        # stable sort (timsort/radix) merges in near-linear time
        if n * sessions.num_rows < 2**62:
            order = np.argsort(cand.write_idx * sessions.num_rows + rank[cand.session_idx], kind="stable")
        else:
            order = np.lexsort((rank[cand.session_idx], cand.write_idx))
        taken = pa.array(cand.session_idx[order])
        users = one_array(sessions.column("user_id")).take(taken)
        sids = session_ids.take(taken)
        owner = cand.write_idx[order]
    else:
        users = sids = pa.array([], pa.string())
        owner = np.zeros(0, np.int64)
    return _list_array(owner, n, users), _list_array(owner, n, sids)


def claims_known_elsewhere(claims: pa.Array, in_fleet: np.ndarray, cand: Candidates, session_ids: pa.Array,
                           known_session: Callable[[list[str]], set[str]] | None) -> np.ndarray:
    """Per write: its claimed id is not among its candidates but exists somewhere (a disguise)."""
    n = len(in_fleet)
    unresolved = claims.is_valid().to_numpy(zero_copy_only=False) & in_fleet & (cand.claimed == 0) if n else \
        np.zeros(0, bool)
    if not unresolved.any():
        return np.zeros(n, dtype=bool)
    ids = sorted(pc.unique(claims.filter(pa.array(unresolved))).to_pylist())
    known = set(ids) & set(session_ids.to_pylist()) if known_session is None else known_session(ids)
    if not known:
        return np.zeros(n, dtype=bool)
    hit = pc.fill_null(pc.is_in(claims, pa.array(sorted(known), pa.string())), False)
    return unresolved & hit.to_numpy(zero_copy_only=False)


class Origins(NamedTuple):
    """Where rows of calls (S3_WRITES-shaped) came from: their normalised addresses and scopes."""

    ips: pa.Array  # distinct normalised addresses
    ip_code: np.ndarray  # per row: index into ``ips``, -1 when the source is not an address
    accounts: pa.Array  # per row: the account whose network the address belongs to
    regions: pa.Array
    scope_keys: pa.Array  # distinct ``<account>|<region>``
    scope_code: np.ndarray  # per row: index into ``scope_keys`` (-1: no scope)
    in_fleet: np.ndarray  # per row: the address is in its scope's fleet subnets
    via_nat: np.ndarray  # per row: ... in its scope's NAT egress


def origins(rows: pa.Table, scopes: Scopes) -> Origins:
    """The first step for writes (and for the calls that place a service's writes)."""
    if rows.num_rows == 0:
        empty = pa.array([], pa.string())
        none = np.zeros(0, dtype=bool)
        return Origins(empty, np.zeros(0, np.int64), empty, empty, empty, np.zeros(0, np.int64), none, none)
    ips, ip_code = normalise_ips(one_array(rows.column("source_ip")))
    accounts = scopes.write_accounts(rows)
    regions = one_array(rows.column("aws_region")).cast(pa.string())
    scope_keys, scope_code, group = scopes.keys(accounts, regions)
    in_fleet, via_nat = fleet_membership(scopes, group, ips, ip_code)
    return Origins(ips, ip_code, accounts, regions, scope_keys, scope_code, in_fleet, via_nat)


def place_service_calls(writes: pa.Table, w: Origins, service: np.ndarray, event_ms: np.ndarray, scopes: Scopes,
                        uses: pa.Table | None, config: Config) -> tuple[Origins, np.ndarray]:
    """Writes a service made with the principal's credentials (``service``) placed at the fleet
    address the same access key was used from (:func:`~.addresses.through_credentials`): by the
    writes themselves or by ``uses``, the calls that started the service's work (Athena's
    ``StartQueryExecution`` from the session's instance).  Returns the writes' origins with the
    placed ones moved there (a fleet write from then on; the addresses may grow), and which were."""
    n = len(service)
    if not service.any():
        return w, np.zeros(n, dtype=bool)
    keys = one_array(writes.column("access_key_id"))
    ips, all_code, all_fleet, all_scope, all_ms = w.ips, w.ip_code, w.in_fleet, w.scope_code, event_ms
    uses = in_scope(conform(uses, S3_WRITES), config) if uses is not None and uses.num_rows else None
    if uses is not None and uses.num_rows:
        u = origins(uses, scopes)
        # the uses' scopes and addresses in the writes' numbering (new addresses appended)
        u_scope = _renumber(u.scope_code, pc.index_in(u.scope_keys, value_set=w.scope_keys))
        extra = pc.filter(u.ips, pc.invert(pc.is_in(u.ips, value_set=w.ips)))
        ips = pa.concat_arrays([w.ips, extra.cast(w.ips.type)]) if len(extra) else w.ips
        keys = pa.concat_arrays([keys, one_array(uses.column("access_key_id")).cast(pa.string())])
        all_code = np.concatenate([w.ip_code, _renumber(u.ip_code, pc.index_in(u.ips, value_set=ips))])
        all_fleet = np.concatenate([w.in_fleet, u.in_fleet & (u_scope >= 0)])
        all_scope = np.concatenate([w.scope_code, u_scope])
        all_ms = np.concatenate([event_ms, epoch_ms(uses.column("event_time"))])
        service = np.concatenate([service, np.zeros(uses.num_rows, dtype=bool)])
    placed_from = through_credentials(service, all_fleet, keys, all_scope, all_ms,
                                      int(config.max_session_hours * 3_600_000))[:n]
    placed = placed_from >= 0
    if not placed.any():
        return w, placed
    ip_code, in_fleet, via_nat = w.ip_code.copy(), w.in_fleet.copy(), w.via_nat.copy()
    ip_code[placed] = all_code[placed_from[placed]]
    in_fleet[placed], via_nat[placed] = True, False
    return w._replace(ips=ips, ip_code=ip_code, in_fleet=in_fleet, via_nat=via_nat), placed


def _renumber(code: np.ndarray, new_of_old: pa.Array) -> np.ndarray:
    """Codes into one array -> codes into another (``new_of_old``: per old position its new one, null:
    none); -1 stays -1."""
    table = np.append(pc.fill_null(new_of_old, -1).to_numpy(zero_copy_only=False).astype(np.int64), -1)
    return table[np.where(code >= 0, code, len(table) - 1)]


def logons_of_chosen(chosen: np.ndarray, sessions: pa.Table, logons: pa.Table,
                     config: Config) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(logon event id, time, source ip) per write, through its chosen session.  The logon depends
    only on the session (its user, start and account): matched once per distinct chosen session."""
    n = len(chosen)
    if not (logons.num_rows and sessions.num_rows and (chosen >= 0).any()):
        return pa.nulls(n, pa.string()), pa.nulls(n, TS), pa.nulls(n, pa.string())
    is_chosen = np.zeros(sessions.num_rows, dtype=bool)
    is_chosen[chosen[chosen >= 0]] = True  # distinct chosen sessions, in order, without a sort
    chosen_sessions = pa.array(np.nonzero(is_chosen)[0])
    accounts = (one_array(sessions.column("aws_account_id")).take(chosen_sessions)
                if "aws_account_id" in sessions.column_names else None)
    lid, lts, lip = match_logons(one_array(sessions.column("user_id")).take(chosen_sessions),
                                 one_array(sessions.column("session_start_time")).take(chosen_sessions),
                                 logons, config, accounts)
    slot = np.cumsum(is_chosen) - 1  # session row -> position among the chosen
    pos = np.where(chosen >= 0, slot[np.maximum(chosen, 0)], -1)
    return masked_take(lid, pos), masked_take(lts, pos), masked_take(lip, pos)


def attribute(writes: pa.Table, sessions: pa.Table, logons: pa.Table, config: Config,
              coverage: Coverage, now_ms: int,
              known_session: Callable[[list[str]], set[str]] | None = None,
              session_source: pa.Array | None = None,
              live_fresh: Callable[[np.ndarray], np.ndarray] | None = None,
              credential_uses: pa.Table | None = None) -> AttributionResult:
    """Attribute in-scope ``writes`` (S3_WRITES rows).  Out-of-scope writes are dropped.

    ``sessions`` holds every session that could explain these writes (SESSION_COLS at least);
    ``known_session(ids)`` answers which claimed ids exist anywhere (default: in ``sessions``);
    ``session_source`` labels each session row ``report`` or ``live``; ``live_fresh(event_ms)`` tells
    for which events the live AppStream view was fresh enough to call a claimed id unknown;
    ``credential_uses`` (CREDENTIAL_USES rows) are calls that handed credentials to a service, used
    with the writes themselves to place a service's writes (:func:`place_service_calls`).
    """
    writes = in_scope(writes, config)
    n = writes.num_rows
    scopes = Scopes(config)
    event_ms = epoch_ms(writes.column("event_time")) if n else np.zeros(0, np.int64)
    invoked_by = writes.column("invoked_by").is_valid().to_numpy(zero_copy_only=False) \
        if n and "invoked_by" in writes.column_names else np.zeros(n, dtype=bool)
    found = origins(writes, scopes)
    # a service's call with the principal's credentials is placed where those credentials were used
    service = (found.ip_code < 0) & invoked_by
    found, placed = place_service_calls(writes, found, service, event_ms, scopes, credential_uses, config)
    ips, ip_code, accounts, regions, scope_keys, scope_code, in_fleet, via_nat = found
    claims = extract_claims(writes, config, logons)
    if sessions.num_rows and "session_source" not in sessions.column_names:
        labels = session_source if session_source is not None else pa.array(["report"] * sessions.num_rows)
        sessions = sessions.append_column("session_source", labels)
    session_ids = one_array(sessions.column("session_id")) if sessions.num_rows else pa.array([], pa.string())

    # a write and a session meet only on the same address in the same scope (account, region)
    write_keys, write_key_code = scoped_addresses(scope_keys, scope_code, ips, ip_code, in_fleet)
    pairs = candidate_pairs_coded(write_keys, write_key_code, event_ms, in_fleet, session_keys(sessions, scopes),
                                  config.tolerance_seconds * 1000)
    cand = choose(*pairs, claims, session_ids, n)
    final, overdue = finality(event_ms, scope_code, scope_keys, config, coverage)
    cand_users, cand_sessions = candidate_lists(cand, sessions, session_ids, n)
    logon_id, logon_time, logon_ip = logons_of_chosen(cand.chosen, sessions, logons, config)

    def chosen_session(col: str, typ: pa.DataType | None = None) -> pa.Array:
        if sessions.num_rows == 0:
            return pa.nulls(n, typ or pa.string())
        return masked_take(sessions.column(col), cand.chosen)

    activity = pa.table({
        "event_id": writes.column("event_id"),
        "event_time": writes.column("event_time"),
        "event_name": writes.column("event_name"),
        "bucket": writes.column("bucket"),
        "key": writes.column("key"),
        "source_ip": writes.column("source_ip"),
        "vpc_endpoint_id": writes.column("vpc_endpoint_id"),
        "principal_arn": writes.column("principal_arn"),
        "role_arn": writes.column("role_arn"),
        "claimed_session_id": claims,
        "status": statuses(in_fleet, cand, final, service=service & ~placed),
        "match": match_kinds(in_fleet, cand, via_nat, placed),
        "user_id": chosen_session("user_id"),
        "session_id": chosen_session("session_id"),
        "session_source": chosen_session("session_source"),
        "session_start_time": chosen_session("session_start_time", TS),
        "session_end_time": chosen_session("session_end_time", TS),
        "candidate_user_ids": cand_users,
        "candidate_session_ids": cand_sessions,
        "fleet_name": chosen_session("fleet_name"),
        "stack_name": chosen_session("stack_name"),
        "instance_id": chosen_session("instance_id"),
        "logon_event_id": logon_id,
        "logon_time": logon_time,
        "logon_source_ip": logon_ip,
        "error_code": writes.column("error_code"),
        "computed_at": pa.array(np.full(n, now_ms, dtype=np.int64)).cast(TS),
        "account_id": accounts,
        "region": regions,
    })
    decidable = final | live_fresh(event_ms) if live_fresh is not None and n else final
    known_elsewhere = claims_known_elsewhere(claims, in_fleet, cand, session_ids, known_session)
    scope = scope_keys.take(pa.array(scope_code, mask=scope_code < 0)) if n else pa.array([], pa.string())
    return AttributionResult(conform(activity, ATTRIBUTED_ACTIVITY), known_elsewhere, final, decidable,
                             overdue & in_fleet & (cand.per_write == 0), scope, invoked_by)
