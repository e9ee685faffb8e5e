"""Public keys, fingerprints and SHA256withRSA verification, checked against `cryptography` and
against the sample keys in the AWS CloudTrail User Guide."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from auditcorr.integrity import KeyFormatError, KeyRing, load_public_key, verify_sha256_rsa
from auditcorr.integrity.rsakeys import parse_der_public_key

# `aws cloudtrail list-public-keys` sample response, AWS CloudTrail User Guide, "Custom
# implementations of CloudTrail log file integrity validation" (two PKCS#1 values, one SPKI).
AWS_SAMPLE_KEYS = {
    "PublicKeyList": [
        {
            "ValidityStartTime": "1436317441.0",
            "ValidityEndTime": "1438909441.0",
            "Value": (
                "MIIBCgKCAQEAn11L2YZ9h7onug2ILi1MWyHiMRsTQjfWE+pHVRLk1QjfWhirG+lpOa8NrwQ/r7Ah5bNL6HepznOU9XTDSfmm"
                "nP97mqyc7z/upfZdS/AHhYcGaz7n6Wc/RRBU6VmiPCrAUojuSk6/GjvA8iOPFsYDuBtviXarvuLPlrT9kAd4Lb+rFfR5peEg"
                "BEkhlzc5HuWO7S0y+KunqxX6jQBnXGMtxmPBPP0FylgWGNdFtks/4YSKcgqwH0YDcawP9GGGDAeCIqPWIXDLG1jOjRRzWfCm"
                "D0iJUkz8vTsn4hq/5ZxRFE7UBAUiVcGbdnDdvVfhF9C3dQiDq3k7adQIziLT0cShgQIDAQAB"
            ),
            "Fingerprint": "8eba5db5bea9b640d1c96a77256fe7f2",
        },
        {
            "ValidityStartTime": "1434589460.0",
            "ValidityEndTime": "1437181460.0",
            "Value": (
                "MIIBCgKCAQEApfYL2FiZhpN74LNWVUzhR+VheYhwhYm8w0n5Gf6i95ylW5kBAWKVEmnAQG7BvS5g9SMqFDQx52fW7NWV44Iv"
                "fJ2xGXT+wT+DgR6ZQ+6yxskQNqV5YcXj4Aa5Zz4jJfsYjDuO2MDTZNIzNvBNzaBJ+r2WIWAJ/Xq54kyF63B6WE38vKuDE7nS"
                "d1FqQuEoNBFLPInvgggYe2Ym1Refe2z71wNcJ2kY+q0h1BSHrSM8RWuJIw7MXwF9iQncg9jYzUlNJomozQzAG5wSRfbplcCY"
                "NY40xvGd/aAmO0m+Y+XFMrKwtLCwseHPvj843qVno6x4BJN9bpWnoPo9sdsbGoiK3QIDAQAB"
            ),
            "Fingerprint": "8933b39ddc64d26d8e14ffbf6566fee4",
        },
        {
            "ValidityStartTime": "1434589370.0",
            "ValidityEndTime": "1437181370.0",
            "Value": (
                "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqlzPJbvZJ42UdcmLfPUqXYNfOs6I8lCfao/tOs8CmzPOEdtLWugB"
                "9xoIUz78qVHdKIqxbaG4jWHfJBiOSSFBM0lt8cdVo4TnRa7oG9io5pysS6DJhBBAeXsicufsiFJR+wrUNh8RSLxL4k6G1+Bh"
                "LX20tJkZ/erT97tDGBujAelqseGg3vPZbTx9SMfOLN65PdLFudLP7Gat0Z9p5jw/rjpclKfo9Bfc3heeBxWGKwBBOKnFAaN9"
                "V57pOaosCvPKmHd9bg7jsQkI9Xp22IzGLsTFJZYVA3KiTAElDMu80iFXPHEq9hKNbt9e4URFam+1utKVEiLkR2disdCmPTK0"
                "VQIDAQAB"
            ),
            "Fingerprint": "31e8b5433410dfb61a9dc45cc65b22ff",
        },
    ]
}


def test_aws_sample_fingerprints_are_md5_of_the_der_as_listed():
    ring = KeyRing()
    assert ring.add_list_public_keys(AWS_SAMPLE_KEYS) == 3
    assert ring.rejected == []
    for item in AWS_SAMPLE_KEYS["PublicKeyList"]:
        der = base64.b64decode(item["Value"])
        key = ring.get(item["Fingerprint"])
        assert key is not None
        # PKCS#1 values: the canonical PKCS#1 re-encoding is byte-identical and is what is fingerprinted
        if der[4] == 0x02:
            assert key.pkcs1_der() == der
            assert key.fingerprint == item["Fingerprint"]
        else:  # the SPKI sample: fingerprinted as SPKI, and reachable by its PKCS#1 fingerprint too
            assert key.spki_der() == der
            assert ring.get(key.fingerprint) is key


def test_list_public_keys_entry_with_a_wrong_fingerprint_is_rejected():
    doc = {"PublicKeyList": [dict(AWS_SAMPLE_KEYS["PublicKeyList"][0], Fingerprint="0" * 32)]}
    ring = KeyRing()
    assert ring.add_list_public_keys(doc) == 0
    assert ring.rejected == [("0" * 32, "fingerprint_mismatch")]
    assert len(ring) == 0


@pytest.mark.parametrize(
    ("encoding", "fmt"),
    [
        (serialization.Encoding.DER, serialization.PublicFormat.PKCS1),
        (serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    ],
)
def test_every_key_form_loads_to_the_same_key_and_fingerprint(signer, encoding, fmt):
    key = load_public_key(signer.public.public_bytes(encoding, fmt))
    numbers = signer.public.public_numbers()
    assert (key.n, key.e) == (numbers.n, numbers.e)
    assert key.fingerprint == hashlib.md5(signer.pkcs1_der()).hexdigest()
    spki = signer.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.spki_der() == spki


@pytest.mark.parametrize("bits", [2048, 3072])
def test_verify_agrees_with_cryptography(bits):
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    key = load_public_key(
        private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    )
    message = b"2026-11-30T11:01:31Z\nbucket/AWSLogs/x.json.gz\n" + b"ab" * 32 + b"\nnull"
    signature = private.sign(message, padding.PKCS1v15(), hashes.SHA256())
    assert verify_sha256_rsa(key, message, signature)
    assert not verify_sha256_rsa(key, message + b" ", signature)
    flipped = bytearray(signature)
    flipped[len(flipped) // 2] ^= 0x01
    assert not verify_sha256_rsa(key, message, bytes(flipped))
    assert not verify_sha256_rsa(key, message, signature[1:])  # wrong length
    assert not verify_sha256_rsa(key, message, (key.n + 1).to_bytes(key.size_bytes, "big"))  # s >= n
    # other schemes over the same message do not pass as PKCS#1 v1.5 / SHA-256
    pss = private.sign(message, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    assert not verify_sha256_rsa(key, message, pss)
    sha1 = private.sign(message, padding.PKCS1v15(), hashes.SHA1())
    assert not verify_sha256_rsa(key, message, sha1)


def test_encodings_with_loose_structure_are_rejected(signer):
    """Raw RSA on hand-made encoded messages: only the exact EMSA-PKCS1-v1_5 block verifies."""
    numbers = signer.private.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    key = load_public_key(signer.pkcs1_der())
    k = key.size_bytes
    message = b"digest signing string"
    h = hashlib.sha256(message).digest()
    info = bytes.fromhex("3031300d060960864801650304020105000420") + h
    info_no_null = bytes.fromhex("302f300b06096086480165030402010420") + h

    def raw_sign(em: bytes) -> bytes:
        return pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")

    good = b"\x00\x01" + b"\xff" * (k - len(info) - 3) + b"\x00" + info
    assert verify_sha256_rsa(key, message, raw_sign(good))
    garbage_after = b"\x00\x01" + b"\xff" * 8 + b"\x00" + info + b"\x42" * (k - len(info) - 11)
    assert not verify_sha256_rsa(key, message, raw_sign(garbage_after))
    no_null = b"\x00\x01" + b"\xff" * (k - len(info_no_null) - 3) + b"\x00" + info_no_null
    assert not verify_sha256_rsa(key, message, raw_sign(no_null))
    block_type_2 = b"\x00\x02" + b"\xff" * (k - len(info) - 3) + b"\x00" + info
    assert not verify_sha256_rsa(key, message, raw_sign(block_type_2))


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "empty_key"),
        (b"\x30\x03\x02\x01\x05", "der_truncated"),
        (bytes.fromhex("3006020101020103"), "modulus_too_small"),
        (b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----", "unknown_key_format"),
        (b"not a key", "unknown_key_format"),
    ],
)
def test_bad_key_bytes_raise_a_named_error(data, kind):
    with pytest.raises(KeyFormatError) as info:
        load_public_key(data)
    assert info.value.kind == kind


def test_der_parser_rejects_trailing_bytes_and_non_rsa_spki(signer):
    der = signer.pkcs1_der()
    with pytest.raises(KeyFormatError, match="der_trailing_bytes"):
        parse_der_public_key(der + b"\x00")
    spki = bytearray(
        signer.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    oid_at = bytes(spki).index(bytes.fromhex("2a864886f70d010101"))
    spki[oid_at + 8] = 0x05  # 1.2.840.113549.1.1.5 is not rsaEncryption
    with pytest.raises(KeyFormatError, match="not_an_rsa_key"):
        parse_der_public_key(bytes(spki))


def test_key_file_whose_name_is_another_fingerprint_is_rejected(signer, other_signer):
    ring = KeyRing()
    assert not ring.add_bytes("x.der", other_signer.pkcs1_der(), expected_fingerprint=signer.fingerprint)
    assert ring.rejected == [("x.der", "fingerprint_mismatch")]
    assert ring.get(signer.fingerprint) is None
