"""RSA public keys (PKCS#1 / SPKI, DER / PEM), their CloudTrail fingerprints, and SHA256withRSA
(RSASSA-PKCS1-v1_5 with SHA-256) verification, in pure Python.

Why by hand (ADR 0007): the core runs in Lambda, whose Python runtime has no ``cryptography``; a
verification needs only ``pow(s, e, n)`` and a byte comparison.  Verification follows RFC 8017
§8.2.2: recompute the expected encoded message EM' = 00 01 FF..FF 00 || DigestInfo(SHA-256) || H and
compare it with s^e mod n as whole byte strings.  Nothing is parsed out of the decrypted block, so
the padding/DigestInfo parsing flaws that made signatures forgeable for e=3 (Bleichenbacher 2006)
cannot arise.  Every input of a verification is public (key, message, signature), so there is no
secret for a timing side channel to leak; the comparison is constant-time anyway.

Fingerprints: CloudTrail names a digest's key by ``digestPublicKeyFingerprint``, the hex MD5 of the
DER bytes ``ListPublicKeys`` returns.  Its reference documents that value as "the DER encoded public
key value in PKCS #1 format" (``RSAPublicKey``); the AWS CLI loads it as PKCS#1 DER.  One of the three
sample keys in the AWS guide is an X.509 ``SubjectPublicKeyInfo`` whose fingerprint is the MD5 of
those SPKI bytes, so a key is known here under both forms' fingerprints.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

# DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1): SEQUENCE { SEQUENCE { OID sha256, NULL },
# OCTET STRING (32 bytes) }.  Java's SHA256withRSA (what CloudTrail names) writes the NULL.
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
# AlgorithmIdentifier { OID rsaEncryption 1.2.840.113549.1.1.1, NULL }
_RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")
_MIN_MODULUS_BITS = 1024
_MAX_KEY_BYTES = 16384  # a 4096-bit key is ~550 bytes of DER; refuse absurd inputs early

_PEM = re.compile(
    rb"-----BEGIN (RSA PUBLIC KEY|PUBLIC KEY)-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END \1-----",
)


class KeyFormatError(ValueError):
    """The bytes are not an RSA public key this module understands; ``kind`` is safe to log."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


# --- a minimal DER reader (definite lengths only) ----------------------------------------------


def _read_tlv(buf: bytes, pos: int) -> tuple[int, bytes, int]:
    """One TLV at ``pos`` -> (tag, value, next position)."""
    if pos + 2 > len(buf):
        raise KeyFormatError("der_truncated")
    tag = buf[pos]
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise KeyFormatError("der_bad_length")
        if pos + count > len(buf):
            raise KeyFormatError("der_truncated")
        length = int.from_bytes(buf[pos : pos + count], "big")
        if length < 0x80 or buf[pos] == 0:
            raise KeyFormatError("der_non_minimal_length")
        pos += count
    end = pos + length
    if end > len(buf):
        raise KeyFormatError("der_truncated")
    return tag, buf[pos:end], end


def _expect(buf: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    got, value, end = _read_tlv(buf, pos)
    if got != tag:
        raise KeyFormatError("der_unexpected_tag")
    return value, end


def _positive_int(value: bytes) -> int:
    if not value:
        raise KeyFormatError("der_empty_integer")
    if value[0] & 0x80:
        raise KeyFormatError("der_negative_integer")
    if len(value) > 1 and value[0] == 0 and not value[1] & 0x80:
        raise KeyFormatError("der_non_minimal_integer")
    return int.from_bytes(value, "big")


def _len_bytes(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _len_bytes(len(value)) + value


def _der_int(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # keeps a leading 0 when the top bit is set
    return _tlv(0x02, body)


# --- keys ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RsaPublicKey:
    n: int
    e: int

    @property
    def size_bytes(self) -> int:
        return (self.n.bit_length() + 7) // 8

    def pkcs1_der(self) -> bytes:
        """``RSAPublicKey`` DER: the form ListPublicKeys returns."""
        return _tlv(0x30, _der_int(self.n) + _der_int(self.e))

    def spki_der(self) -> bytes:
        algorithm = _tlv(0x30, _tlv(0x06, _RSA_ENCRYPTION_OID) + _tlv(0x05, b""))
        return _tlv(0x30, algorithm + _tlv(0x03, b"\x00" + self.pkcs1_der()))

    @property
    def fingerprint(self) -> str:
        """CloudTrail's fingerprint: MD5 (hex) of the PKCS#1 DER bytes."""
        return fingerprint_of(self.pkcs1_der())

    def fingerprints(self) -> frozenset[str]:
        """Every fingerprint this key may be named by (PKCS#1 and SPKI DER forms)."""
        return frozenset((self.fingerprint, fingerprint_of(self.spki_der())))


def fingerprint_of(der: bytes) -> str:
    # MD5 is CloudTrail's choice of identifier, not a security control here: the key that verifies
    # is the one the caller trusts (it came from ListPublicKeys), whatever its name.
    return hashlib.md5(der, usedforsecurity=False).hexdigest()


def _parse_pkcs1(der: bytes) -> RsaPublicKey:
    body, end = _expect(der, 0, 0x30)
    if end != len(der):
        raise KeyFormatError("der_trailing_bytes")
    n_raw, pos = _expect(body, 0, 0x02)
    e_raw, pos = _expect(body, pos, 0x02)
    if pos != len(body):
        raise KeyFormatError("der_trailing_bytes")
    key = RsaPublicKey(_positive_int(n_raw), _positive_int(e_raw))
    if key.n.bit_length() < _MIN_MODULUS_BITS:
        raise KeyFormatError("modulus_too_small")
    if key.e < 3 or key.e % 2 == 0 or key.e >= key.n:
        raise KeyFormatError("bad_public_exponent")
    return key


def _parse_spki(der: bytes) -> RsaPublicKey:
    body, end = _expect(der, 0, 0x30)
    if end != len(der):
        raise KeyFormatError("der_trailing_bytes")
    algorithm, pos = _expect(body, 0, 0x30)
    bits, pos = _expect(body, pos, 0x03)
    if pos != len(body):
        raise KeyFormatError("der_trailing_bytes")
    oid, apos = _expect(algorithm, 0, 0x06)
    if oid != _RSA_ENCRYPTION_OID:
        raise KeyFormatError("not_an_rsa_key")
    if apos != len(algorithm) and algorithm[apos:] != b"\x05\x00":
        raise KeyFormatError("bad_algorithm_parameters")
    if not bits or bits[0] != 0:
        raise KeyFormatError("bad_bit_string")
    return _parse_pkcs1(bits[1:])


def parse_der_public_key(der: bytes) -> RsaPublicKey:
    """PKCS#1 ``RSAPublicKey`` or X.509 ``SubjectPublicKeyInfo`` DER -> key."""
    if len(der) > _MAX_KEY_BYTES:
        raise KeyFormatError("too_large")
    if len(der) > 4 and der[0] == 0x30:
        # SPKI starts SEQUENCE { SEQUENCE {...} }, PKCS#1 starts SEQUENCE { INTEGER ... }
        _, inner, _ = _read_tlv(der, 0)
        if inner[:1] == b"\x30":
            return _parse_spki(der)
    return _parse_pkcs1(der)


def load_public_key(data: bytes) -> RsaPublicKey:
    """PEM (``RSA PUBLIC KEY`` / ``PUBLIC KEY``), DER, or the base64 text ListPublicKeys prints."""
    if len(data) > 4 * _MAX_KEY_BYTES:
        raise KeyFormatError("too_large")
    if data[:1] == b"\x30":  # binary DER (a SEQUENCE); never strip it, its last bytes may look like spaces
        return parse_der_public_key(data)
    stripped = data.strip()
    if not stripped:
        raise KeyFormatError("empty_key")
    match = _PEM.search(stripped)
    if match:
        try:
            der = base64.b64decode(b"".join(match.group(2).split()), validate=True)
        except binascii.Error as exc:
            raise KeyFormatError("bad_pem_base64") from exc
        return parse_der_public_key(der)
    try:
        der = base64.b64decode(stripped, validate=True)
    except binascii.Error as exc:
        raise KeyFormatError("unknown_key_format") from exc
    return parse_der_public_key(der)


# --- signatures ----------------------------------------------------------------------------------


def verify_sha256_rsa(key: RsaPublicKey, message: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 verification with SHA-256 (RFC 8017 §8.2.2, encode-and-compare)."""
    k = key.size_bytes
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        return False
    encoded = pow(s, key.e, key.n).to_bytes(k, "big")
    t = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    if k < len(t) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(encoded, expected)
