"""Bounded streaming gunzip + SHA-256 of the uncompressed content."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib

import pytest

from auditcorr.integrity import hash_gzip_stream
from auditcorr.integrity.gzipstream import InflateError, inflate_bounded

CONTENT = os.urandom(200_000) + b'{"Records": []}' * 50_000  # ~950 KB, part incompressible
BODY = gzip.compress(CONTENT, mtime=0)
CAP = 10 << 20


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20, len(BODY)])
def test_hash_is_of_the_uncompressed_content_whatever_the_chunking(size):
    chunks = chunked(BODY, size) if size > 1 else chunked(BODY[:5000], 1) + [BODY[5000:]]
    result = hash_gzip_stream(iter(chunks), max_inflated_bytes=CAP)
    assert result.outcome == "ok"
    assert result.sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert result.inflated_bytes == len(CONTENT)


def test_a_second_gzip_member_is_trailing_data_although_the_first_member_matches():
    body = BODY + gzip.compress(b'{"Records": [{"eventName": "forged"}]}')
    # what a validator stopping after the first member (zlib's default) would compute: a match
    first_member_only = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body)
    assert hashlib.sha256(first_member_only).hexdigest() == hashlib.sha256(CONTENT).hexdigest()
    for chunks in ([body], chunked(body, 1000), [BODY, gzip.compress(b"x")]):
        result = hash_gzip_stream(chunks, max_inflated_bytes=CAP)
        assert (result.outcome, result.sha256) == ("trailing_data", None)


@pytest.mark.parametrize("tail", [b"\x00", b"garbage", b"\n"])
def test_trailing_garbage_is_trailing_data(tail):
    assert hash_gzip_stream([BODY, tail], max_inflated_bytes=CAP).outcome == "trailing_data"


def test_truncated_corrupt_and_empty_streams():
    assert hash_gzip_stream([BODY[:-4]], max_inflated_bytes=CAP).outcome == "truncated"
    assert hash_gzip_stream([], max_inflated_bytes=CAP).outcome == "truncated"
    assert hash_gzip_stream([b"plain text, not gzip"], max_inflated_bytes=CAP).outcome == "corrupt"
    bad_crc = bytearray(BODY)
    bad_crc[-6] ^= 0xFF  # inside the CRC32 trailer
    assert hash_gzip_stream([bytes(bad_crc)], max_inflated_bytes=CAP).outcome == "corrupt"


def test_inflation_stops_at_the_cap_without_inflating_the_rest():
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in ~64 KB
    assert len(bomb) < 100_000
    result = hash_gzip_stream(chunked(bomb, 65536), max_inflated_bytes=2 << 20)
    assert result.outcome == "too_large"
    assert result.sha256 is None
    assert result.inflated_bytes <= (2 << 20) + (1 << 20)  # at most one step past the cap


def test_inflate_bounded_returns_content_or_raises_the_outcome():
    assert inflate_bounded(BODY, max_inflated_bytes=CAP) == CONTENT
    with pytest.raises(InflateError) as info:
        inflate_bounded(BODY + b"x", max_inflated_bytes=CAP)
    assert info.value.kind == "trailing_data"
    with pytest.raises(InflateError) as info:
        inflate_bounded(BODY, max_inflated_bytes=1000)
    assert info.value.kind == "too_large"
