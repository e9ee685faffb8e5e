"""CloudTrail's public keys for digest validation: ``ListPublicKeys`` (paginated), for the core's
integrity stage, which caches the keys it gets in the lake (``_state/integrity/keys``).

Keys are regional and rotate: the call asks for the keys used in the digest's own time window.
A refused or failed call (no ``cloudtrail:ListPublicKeys`` permission, a region that is not enabled,
an endpoint without the API) is logged and answers "no keys": the digest is then stored and shown
as ``unverifiable`` (``no_key``) -- never judged invalid -- and the next digest asks again.  A
digest's log files are still hashed and kept, so they are verified as soon as a key is available
(the next digest of the chain vouches for the earlier ones by hash).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import s3 as s3mod

log = logging.getLogger("auditcorr")

_MARGIN = timedelta(hours=1)


def list_public_keys(client: Any, start: datetime, end: datetime) -> dict[str, Any]:
    """Every page of ``ListPublicKeys`` for [start - 1 h, end + 1 h], as one ``PublicKeyList``."""
    keys: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StartTime": start - _MARGIN, "EndTime": end + _MARGIN}
    while True:
        page = client.list_public_keys(**kwargs)
        keys += page.get("PublicKeyList", [])
        token = page.get("NextToken")
        if not token:
            return {"PublicKeyList": keys}
        kwargs["NextToken"] = token


def key_fetcher(client_for: Callable[[str], Any] | None = None) -> Callable[[str, datetime, datetime], dict[str, Any]]:
    """``(region, start, end) -> list-public-keys output``; one client per region, built on first use."""
    clients: dict[str, Any] = {}
    make = client_for or (lambda region: s3mod.client_in_region("cloudtrail", region))

    def fetch(region: str, start: datetime, end: datetime) -> dict[str, Any]:
        if region not in clients:
            clients[region] = make(region)
        try:
            return list_public_keys(clients[region], start, end)
        except (ClientError, BotoCoreError) as exc:
            code = s3mod.error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            log.warning("ListPublicKeys failed: digests stay unverifiable", extra={"region": region,
                                                                                   "error_code": code})
            return {"PublicKeyList": []}

    return fetch
