"""The S3 key shapes of CloudTrail log and digest files.

Keys are matched from ``AWSLogs/`` on, so any trail key prefix (or a local directory holding a copy)
may come before it:

- log: ``AWSLogs/[o-xxx/]<account>/CloudTrail/<region>/YYYY/MM/DD/``
  ``<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random>.json.gz``
- digest: ``AWSLogs/[o-xxx/]<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/``
  ``<account>_CloudTrail-Digest_<region>_<trail>_<home region>_<YYYYMMDDTHHMMSSZ>[_backfill].json.gz``

The digest name's timestamp is the digest's end time; ``<home region>`` is the region the trail was
created in (it differs from ``<region>`` for a multi-region trail's other regions).  Trail names may
hold underscores, so the home region is taken as the last region-shaped token before the time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_ORG = r"(?:(?P<org>o-[a-z0-9]{10,32})/)?"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}"
_LOG = re.compile(
    r"(?:^|/)(?P<rel>AWSLogs/" + _ORG + r"(?P<account>\d{12})/CloudTrail/(?P<region>" + _REGION + r")/"
    r"\d{4}/\d{2}/\d{2}/(?P=account)_CloudTrail_(?P=region)_(?P<ts>\d{8}T\d{4}Z)_[A-Za-z0-9]+\.json\.gz)$",
    re.ASCII,
)
_DIGEST = re.compile(
    r"(?:^|/)(?P<rel>AWSLogs/" + _ORG + r"(?P<account>\d{12})/CloudTrail-Digest/(?P<region>" + _REGION + r")/"
    r"\d{4}/\d{2}/\d{2}/(?P=account)_CloudTrail-Digest_(?P=region)_(?P<trail>[A-Za-z0-9._-]+)_"
    r"(?P<home>" + _REGION + r")_(?P<ts>\d{8}T\d{6}Z)(?P<backfill>_backfill)?\.json\.gz)$",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class LogKey:
    key: str  # as given
    prefix: str  # what came before AWSLogs/ ("" for none), the trail's key prefix or a local root
    rel: str  # from AWSLogs/ on: what a digest's logFiles[].s3Object ends with
    org_id: str | None
    account: str
    region: str
    time: datetime  # the minute in the file name (delivery time, UTC)


@dataclass(frozen=True, slots=True)
class DigestKey:
    key: str
    prefix: str
    rel: str
    org_id: str | None
    account: str
    region: str
    trail: str
    home_region: str
    end_time: datetime  # the timestamp in the file name
    backfill: bool

    @property
    def chain(self) -> tuple[str | None, str, str, str, str, bool]:
        """Digests of one chain: (org, account, region, trail, home region, backfill)."""
        return (self.org_id, self.account, self.region, self.trail, self.home_region, self.backfill)


def _compact_time(text: str) -> datetime | None:
    fmt = "%Y%m%dT%H%M%SZ" if len(text) == 16 else "%Y%m%dT%H%MZ"
    try:
        return datetime.strptime(text, fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_log_key(key: str) -> LogKey | None:
    m = _LOG.search(key)
    if not m:
        return None
    when = _compact_time(m["ts"])
    if when is None:
        return None
    return LogKey(key, key[: m.start("rel")], m["rel"], m["org"], m["account"], m["region"], when)


def parse_digest_key(key: str) -> DigestKey | None:
    m = _DIGEST.search(key)
    if not m:
        return None
    when = _compact_time(m["ts"])
    if when is None:
        return None
    return DigestKey(
        key,
        key[: m.start("rel")],
        m["rel"],
        m["org"],
        m["account"],
        m["region"],
        m["trail"],
        m["home"],
        when,
        bool(m["backfill"]),
    )


def relative_key(key: str) -> str:
    """The part of a key from ``AWSLogs/`` on (the whole key when it has none)."""
    if key.startswith("AWSLogs/"):
        return key
    at = key.find("/AWSLogs/")
    return key[at + 1 :] if at >= 0 else key
