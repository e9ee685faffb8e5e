"""CloudTrail's public keys for digest validation: ``ListPublicKeys`` (paginated), for the core's
integrity stage, which caches the keys it gets in the lake (``_state/integrity/keys``).

Keys are regional and rotate: the call asks for the keys used in the digest's own time window.
Errors propagate (the message is retried, then dead-lettered): a digest is never judged without
having asked for its key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from . import s3 as s3mod

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
        return list_public_keys(clients[region], start, end)

    return fetch
