"""S3 access for the handlers: lazily built clients, object fetches with error classification by
code, and the lake opened on S3 through pyarrow's own S3 client."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import boto3
import pyarrow.fs as pafs
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from auditcorr.lake import Lake

from .envelopes import ObjectRef

#: retries with backoff inside one invocation (throttling, 5xx); what still fails goes back to SQS
BOTO_CONFIG = BotoConfig(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60)

#: GetObject error codes after which retrying cannot help: the object (or version) is gone or archived
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "InvalidObjectState", "404", "NotFound"})


class ObjectGone(Exception):
    """The announced object no longer exists (or is archived); ``code`` is S3's error code."""

    def __init__(self, ref: ObjectRef, code: str) -> None:
        super().__init__(f"{code}: s3://{ref.bucket}/{ref.key}")
        self.ref = ref
        self.code = code


@lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    # one session per process: its clients share botocore's loaded service models (a faster cold start)
    return boto3.session.Session()


def client(service: str, session: boto3.session.Session | None = None) -> Any:
    """A boto3 client with the retry policy above (endpoint/credentials from the environment)."""
    return (session or _session()).client(service, config=BOTO_CONFIG)


def client_in_region(service: str, region: str) -> Any:
    """A client of ``service`` in ``region`` (CloudTrail's public keys are regional)."""
    return _session().client(service, region_name=region, config=BOTO_CONFIG)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def get_object(s3: Any, ref: ObjectRef) -> tuple[bytes, str | None]:
    """The object's bytes and ETag. Raises :class:`ObjectGone` when retrying cannot help; any other
    error (throttling, 5xx, access denied, network) propagates so the message is retried and, if
    it keeps failing, lands in the dead-letter queue."""
    data, etag, _ = get_object_and_metadata(s3, ref)
    return data, etag


def get_object_and_metadata(s3: Any, ref: ObjectRef) -> tuple[bytes, str | None, dict[str, str]]:
    """``get_object`` with the object's user metadata (a CloudTrail digest's ``signature`` and
    ``signature-algorithm``: the same map ``head-object`` returns, without a second request)."""
    kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        kwargs["VersionId"] = ref.version_id
    try:
        resp = s3.get_object(**kwargs)
    except ClientError as exc:
        code = error_code(exc)
        if code in GONE_CODES:
            raise ObjectGone(ref, code) from exc
        raise
    with resp["Body"] as body:
        data = body.read()
    return data, resp.get("ETag"), dict(resp.get("Metadata") or {})


def endpoint_from_env(env: Mapping[str, str]) -> tuple[str, str] | None:
    """``(host[:port], scheme)`` from ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (moto, LocalStack)."""
    url = (env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "").strip()
    if not url:
        return None
    parts = urlsplit(url if "://" in url else f"https://{url}")
    return parts.netloc, parts.scheme or "https"


def lake_filesystem(region: str, env: Mapping[str, str]) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem for the lake (credentials from the environment, as in Lambda)."""
    kwargs: dict[str, Any] = {
        "region": region,
        # pyarrow creates "directory" marker objects; checking first turns a PUT per write into a HEAD
        "check_directory_existence_before_creation": True,
        "allow_bucket_creation": False,
        "allow_bucket_deletion": False,
    }
    endpoint = endpoint_from_env(env)
    if endpoint:
        kwargs["endpoint_override"], kwargs["scheme"] = endpoint
    return pafs.S3FileSystem(**kwargs)


def open_lake(uri: str, region: str, env: Mapping[str, str]) -> Lake:
    return Lake.open(uri, filesystem=lake_filesystem(region, env))
