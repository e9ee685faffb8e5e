"""Bounded streaming gunzip + SHA-256 of the uncompressed content."""

from __future__ import annotations

import gzip
import hashlib
import random
import zlib

import pytest

from auditcorr.integrity import hash_gzip_stream
from auditcorr.integrity.gzipstream import InflateError, inflate_bounded

# ~950 KB, part incompressible; seeded, so every run (and every pytest-xdist worker) sees the same bytes
CONTENT = random.Random(14).randbytes(200_000) + b'{"Records": []}' * 50_000
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


@pytest.mark.parametrize("make", [
    lambda c: gzip.compress(c, mtime=0),                                  # one member (small and large)
    lambda c: gzip.compress(c, mtime=0) + gzip.compress(b"x", mtime=0),   # a second member
    lambda c: gzip.compress(c, mtime=0) + b"garbage",                     # trailing garbage
    lambda c: gzip.compress(c, mtime=0)[:-5],                             # truncated
    lambda c: gzip.compress(c, mtime=0)[:-8] + b"\0" * 8,                 # bad CRC
    lambda c: c,                                                          # not gzip
])
@pytest.mark.parametrize("size", [10, 3 << 20])  # below and above the background-hash threshold
def test_inflate_and_hash_agrees_with_the_streaming_hash(make, size):
    from auditcorr.ingest.cloudtrail import UnreadableObject, decode_and_hash
    from auditcorr.integrity.gzipstream import inflate_and_hash

    content = (b'{"Records": [' + b"1," * (size // 2) + b"1]}")
    data = make(content)
    want = hash_gzip_stream([data], max_inflated_bytes=1 << 30)
    got_content, got = inflate_and_hash(data, max_inflated_bytes=1 << 30)
    assert (got.outcome, got.sha256) == (want.outcome, want.sha256)
    if want.outcome in ("ok", "trailing_data"):
        assert got_content == content
        try:
            before = gzip.decompress(data)
        except OSError:  # garbage after the member: unreadable for the parser, as before
            with pytest.raises(UnreadableObject):
                decode_and_hash(data)
            return
        body, pending = decode_and_hash(data)
        resolved = pending.result() if hasattr(pending, "result") else pending
        assert (resolved.outcome, resolved.sha256) == (want.outcome, want.sha256)
        assert body == before  # the parser reads what it read before
