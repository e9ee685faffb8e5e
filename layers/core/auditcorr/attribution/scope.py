"""Scope: the network a private address means something in.

A private IP identifies an instance only inside one account's VPCs (organisations reuse
``10.0.0.0/16`` everywhere), so the join matches a write only to sessions of the same scope:
``<account>|<region>`` (or ``<account>|*`` for a fleet group whose fleets reach S3 across regions).

Which account's address space a write's source IP belongs to, first rule that answers:

1. the VPC endpoint it came through is listed in a ``[[fleets]]`` group's ``vpc_endpoints``: that
   group's account (the configuration maps endpoints to fleets);
2. ``vpcEndpointAccountId`` (newer events): the account that owns the endpoint, i.e. whose VPC the
   instance sits in;
3. the signing role (``sessionContext.sessionIssuer``) is listed in exactly one group's ``roles``:
   that group's account (a fleet writing through a role of another account, e.g. the data lake's);
4. the signing role's own account (from its ARN).

The region is the S3 event's ``awsRegion`` (the bucket's region): through a gateway endpoint, the
only kind that keeps private addresses for S3 without an interface endpoint, a fleet reaches only
its own region's buckets, so the fleet's region is the bucket's.  A group with ``match_region =
false`` (interface endpoints used across regions) matches on the account alone.

A session's scope is the report's ``aws_account_id`` and ``region`` (or the live poll's).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow import one_array
from ..config import Config, FleetGroup

ANY_REGION = "*"
UNKNOWN = "?"


def _strings(t: pa.Table, name: str) -> pa.Array:
    if name not in t.column_names:
        return pa.nulls(t.num_rows, pa.string())
    return one_array(t.column(name)).cast(pa.string())


def role_account(arns: pa.Array) -> pa.Array:
    """The account of an IAM ARN (``arn:<partition>:iam::<account>:role/...``), null otherwise."""
    return pc.extract_regex(arns, r"^arn:[a-z-]+:(?:iam|sts)::(?P<account>\d{12}):").field("account") \
        if len(arns) else pa.array([], pa.string())


class Scopes:
    """The configuration's fleet groups, looked up by account."""

    def __init__(self, config: Config) -> None:
        self.groups: tuple[FleetGroup, ...] = config.fleet_groups()
        self.by_account = {g.account: i for i, g in enumerate(self.groups) if g.account is not None}
        #: the flat group (``[attribution]``), if the configuration has one: every other account
        self.flat = next((i for i, g in enumerate(self.groups) if g.account is None), -1)
        self.endpoint_account = {e: g.account for g in self.groups if g.account for e in g.vpc_endpoints}
        owners: dict[str, set[str]] = {}
        for g in self.groups:
            for r in g.roles:
                if g.account:
                    owners.setdefault(r, set()).add(g.account)
        self.role_account = {r: next(iter(a)) for r, a in owners.items() if len(a) == 1}

    def group_of(self, account: str | None) -> int:
        if account is None:
            return -1
        return self.by_account.get(account, self.flat)

    def scope_key(self, account: str | None, region: str | None) -> tuple[str, int]:
        """(``<account>|<region or *>``, group index or -1) of an account and region."""
        g = self.group_of(account)
        if account is None:
            return f"{UNKNOWN}|{UNKNOWN}", -1
        if g >= 0 and not self.groups[g].match_region:
            return f"{account}|{ANY_REGION}", g
        return f"{account}|{region or UNKNOWN}", g

    # -- writes ---------------------------------------------------------------------------------
    def write_accounts(self, writes: pa.Table) -> pa.Array:
        """The account whose address space each write's source IP is in (rules 1-4 of the module doc)."""
        n = writes.num_rows
        if n == 0:
            return pa.array([], pa.string())
        cols = [_strings(writes, c) for c in ("vpc_endpoint_id", "vpc_endpoint_account_id", "role_arn")]
        encoded = [pc.dictionary_encode(c) for c in cols]
        sizes = [len(e.dictionary) + 1 for e in encoded]
        combo = np.zeros(n, dtype=np.int64)
        for e, size in zip(encoded, sizes, strict=True):
            combo = combo * size + e.indices.fill_null(size - 1).to_numpy(zero_copy_only=False).astype(np.int64)
        uniq, inverse = np.unique(combo, return_inverse=True)
        dicts = [e.dictionary.to_pylist() + [None] for e in encoded]
        accounts: list[str | None] = []
        for c in uniq.tolist():
            role_i = c % sizes[2]
            owner_i = (c // sizes[2]) % sizes[1]
            vpce_i = c // (sizes[2] * sizes[1])
            vpce, owner, role = dicts[0][vpce_i], dicts[1][owner_i], dicts[2][role_i]
            accounts.append(self._account(vpce, owner, role))
        return pa.array(accounts, pa.string()).take(pa.array(inverse.reshape(-1)))

    def _account(self, vpce: str | None, owner: str | None, role: str | None) -> str | None:
        if vpce and vpce in self.endpoint_account:
            return self.endpoint_account[vpce]
        if owner:
            return owner
        if role and role in self.role_account:
            return self.role_account[role]
        if role:
            acct = role_account(pa.array([role], pa.string()))[0].as_py()
            return acct
        return None

    def keys(self, accounts: pa.Array, regions: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        """(distinct scope keys, per row the index of its key, per row its group or -1)."""
        n = len(accounts)
        if n == 0:
            return pa.array([], pa.string()), np.zeros(0, np.int64), np.zeros(0, np.int64)
        acc = pc.dictionary_encode(accounts)
        reg = pc.dictionary_encode(regions)
        na, nr = len(acc.dictionary) + 1, len(reg.dictionary) + 1
        combo = (acc.indices.fill_null(na - 1).to_numpy(zero_copy_only=False).astype(np.int64) * nr
                 + reg.indices.fill_null(nr - 1).to_numpy(zero_copy_only=False).astype(np.int64))
        uniq, inverse = np.unique(combo, return_inverse=True)
        a_list = acc.dictionary.to_pylist() + [None]
        r_list = reg.dictionary.to_pylist() + [None]
        key_of: dict[str, int] = {}
        code = np.empty(len(uniq), np.int64)
        group = np.empty(len(uniq), np.int64)
        for j, c in enumerate(uniq.tolist()):
            key, g = self.scope_key(a_list[c // nr], r_list[c % nr])
            code[j] = key_of.setdefault(key, len(key_of))
            group[j] = g
        inverse = inverse.reshape(-1)
        return pa.array(list(key_of), pa.string()), code[inverse], group[inverse]


def session_scope_columns(sessions: pa.Table) -> tuple[pa.Array, pa.Array]:
    """(account, region) of each session: the report's ``aws_account_id``/``region``, or a live
    observation's ``account_id``/``region``."""
    account = _strings(sessions, "aws_account_id")
    if "account_id" in sessions.column_names:
        account = pc.coalesce(account, _strings(sessions, "account_id"))
    return account, _strings(sessions, "region")


def scoped_addresses(scope_keys: pa.Array, scope_code: np.ndarray, ips: pa.Array,
                     ip_code: np.ndarray, mask: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """One key per (scope, address): ``<scope>|<ip>`` for the distinct pairs of the rows in ``mask``;
    returns the distinct keys and, per row, the index of its key (-1: none)."""
    n = len(scope_code)
    out = np.full(n, -1, dtype=np.int64)
    rows = np.nonzero(mask & (ip_code >= 0) & (scope_code >= 0))[0]
    if len(rows) == 0:
        return pa.array([], pa.string()), out
    k = max(len(ips), 1)
    combo = scope_code[rows] * k + ip_code[rows]
    uniq, inverse = np.unique(combo, return_inverse=True)
    s_part = scope_keys.take(pa.array(uniq // k))
    i_part = ips.take(pa.array(uniq % k))
    keys = pc.binary_join_element_wise(s_part, i_part, "|")
    out[rows] = inverse.reshape(-1)
    return keys, out
