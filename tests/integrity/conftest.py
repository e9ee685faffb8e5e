from __future__ import annotations

import pytest

from auditcorr.integrity import KeyRing
from tests.integrity.trail import Signer


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer()


@pytest.fixture(scope="session")
def other_signer() -> Signer:
    return Signer()


def ring_of(*signers: Signer) -> KeyRing:
    ring = KeyRing()
    for s in signers:
        assert ring.add_bytes(s.fingerprint, s.pkcs1_der(), expected_fingerprint=s.fingerprint)
    return ring


@pytest.fixture
def ring(signer: Signer) -> KeyRing:
    return ring_of(signer)
