"""Webhook signature checks against vectors computed here, independently of the code."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from zalo_client import SIGNATURE_HEADER, InvalidSignature, SignatureVerifier

APP_ID = "360846524940903967"
OA_SECRET_KEY = "oa-secret-key-from-webhook-settings"
TIMESTAMP = "1543908534740"
BODY = (
    '{"app_id":"360846524940903967","sender":{"id":"246845883529197922"},'
    '"user_id_by_app":"552177279717587730","recipient":{"id":"388613280878808645"},'
    '"event_name":"user_send_text","message":{"text":"message","msg_id":"96d3cdf3af150460909"},'
    '"timestamp":"1543908534740"}'
)
EXPECTED_MAC = hashlib.sha256((APP_ID + BODY + TIMESTAMP + OA_SECRET_KEY).encode()).hexdigest()


@pytest.fixture
def verifier() -> SignatureVerifier:
    return SignatureVerifier(APP_ID, OA_SECRET_KEY)


def test_header_name_is_zalos() -> None:
    assert SIGNATURE_HEADER == "X-ZEvent-Signature"


def test_expected_mac_is_plain_sha256_of_the_concatenation(verifier: SignatureVerifier) -> None:
    assert verifier.expected_mac(BODY.encode(), TIMESTAMP) == EXPECTED_MAC


def test_sign_produces_the_header_value(verifier: SignatureVerifier) -> None:
    assert verifier.sign(BODY.encode(), TIMESTAMP) == f"mac={EXPECTED_MAC}"


def test_valid_signature_passes(verifier: SignatureVerifier) -> None:
    verifier.verify(BODY.encode(), TIMESTAMP, f"mac={EXPECTED_MAC}")


def test_non_ascii_body_is_hashed_as_received() -> None:
    body = '{"event_name":"user_send_text","message":{"text":"Rất hài lòng"}}'.encode()
    key = "k"
    expected = hashlib.sha256(APP_ID.encode() + body + TIMESTAMP.encode() + key.encode())
    SignatureVerifier(APP_ID, key).verify(body, TIMESTAMP, f"mac={expected.hexdigest()}")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        EXPECTED_MAC,
        f"sha256={EXPECTED_MAC}",
        f"MAC={EXPECTED_MAC}",
        f"mac= {EXPECTED_MAC}",
        f"mac={EXPECTED_MAC.upper()}",
        f"mac={EXPECTED_MAC[:-1]}",
        f"mac={EXPECTED_MAC}0",
        f"mac={EXPECTED_MAC}\n",
    ],
    ids=[
        "missing",
        "empty",
        "no-prefix",
        "wrong-prefix",
        "uppercase-prefix",
        "space",
        "uppercase-hex",
        "short-hex",
        "long-hex",
        "trailing-newline",
    ],
)
def test_malformed_header_is_rejected(verifier: SignatureVerifier, header: str | None) -> None:
    with pytest.raises(InvalidSignature):
        verifier.verify(BODY.encode(), TIMESTAMP, header)


def test_body_altered_by_one_byte_is_rejected(verifier: SignatureVerifier) -> None:
    altered = BODY.replace('"text":"message"', '"text":"messagf"').encode()
    assert len(altered) == len(BODY.encode())
    with pytest.raises(InvalidSignature):
        verifier.verify(altered, TIMESTAMP, f"mac={EXPECTED_MAC}")


def test_reserialised_body_is_rejected(verifier: SignatureVerifier) -> None:
    reserialised = BODY.replace(",", ", ").encode()
    with pytest.raises(InvalidSignature):
        verifier.verify(reserialised, TIMESTAMP, f"mac={EXPECTED_MAC}")


def test_other_timestamp_is_rejected(verifier: SignatureVerifier) -> None:
    with pytest.raises(InvalidSignature):
        verifier.verify(BODY.encode(), "1543908534741", f"mac={EXPECTED_MAC}")


def test_hmac_variant_is_rejected(verifier: SignatureVerifier) -> None:
    data = (APP_ID + BODY + TIMESTAMP).encode()
    hmac_mac = hmac.new(OA_SECRET_KEY.encode(), data, hashlib.sha256).hexdigest()
    with pytest.raises(InvalidSignature):
        verifier.verify(BODY.encode(), TIMESTAMP, f"mac={hmac_mac}")


def test_oa_id_instead_of_app_id_is_rejected(verifier: SignatureVerifier) -> None:
    oa_id = "388613280878808645"
    mac = hashlib.sha256((oa_id + BODY + TIMESTAMP + OA_SECRET_KEY).encode()).hexdigest()
    with pytest.raises(InvalidSignature):
        verifier.verify(BODY.encode(), TIMESTAMP, f"mac={mac}")


@pytest.mark.parametrize(("app_id", "key"), [(APP_ID, ""), ("", OA_SECRET_KEY), ("", "")])
def test_unconfigured_verifier_fails_closed(app_id: str, key: str) -> None:
    verifier = SignatureVerifier(app_id, key)
    matching = verifier.sign(BODY.encode(), TIMESTAMP)
    with pytest.raises(InvalidSignature):
        verifier.verify(BODY.encode(), TIMESTAMP, matching)
