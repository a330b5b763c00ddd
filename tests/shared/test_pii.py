"""Tests for PII encryption at rest and keyed hashing."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.pii import PiiCipher, PiiError, generate_key_b64

ENC_KEY = bytes(range(32))
HASH_KEY = bytes(range(32, 64))
OTHER_KEY = bytes(range(64, 96))


@pytest.fixture
def cipher() -> PiiCipher:
    return PiiCipher(ENC_KEY, HASH_KEY)


@pytest.mark.parametrize(
    "plain",
    [
        pytest.param("11010519491231002X", id="resident-id"),
        pytest.param("张三", id="chinese-name"),
        pytest.param("", id="empty"),
        pytest.param("13800138000", id="phone"),
        pytest.param("山西省吕梁市交城县天宁镇 🏠" * 50, id="long-with-emoji"),
    ],
)
def test_round_trip(cipher: PiiCipher, plain: str) -> None:
    token = cipher.encrypt(plain)
    assert cipher.decrypt(token) == plain
    assert token.startswith("v1.")
    assert token.isascii()
    assert plain == "" or plain not in token


@given(st.text())
def test_round_trip_any_text(plain: str) -> None:
    cipher = PiiCipher(ENC_KEY, HASH_KEY)
    assert cipher.decrypt(cipher.encrypt(plain)) == plain


def test_each_encryption_uses_a_fresh_nonce(cipher: PiiCipher) -> None:
    tokens = {cipher.encrypt("11010519491231002X") for _ in range(50)}
    assert len(tokens) == 50
    nonces = {base64.urlsafe_b64decode(t[3:] + "==")[:12] for t in tokens}
    assert len(nonces) == 50


def test_token_is_compact(cipher: PiiCipher) -> None:
    # 3 (prefix) + base64url of 12 nonce + 18 data + 16 tag bytes, without padding.
    token = cipher.encrypt("11010519491231002X")
    assert len(token) == 3 + 62
    assert "=" not in token


def _flip(token: str, index: int) -> str:
    """Change one character of the base64 body to another base64url character."""
    body = list(token[3:])
    body[index] = "A" if body[index] != "A" else "B"
    return "v1." + "".join(body)


@pytest.mark.parametrize("index", [0, 5, 16, 20, 40, -2])
def test_tampering_is_detected(cipher: PiiCipher, index: int) -> None:
    token = cipher.encrypt("11010519491231002X")
    with pytest.raises(PiiError, match="tampered or wrong key"):
        cipher.decrypt(_flip(token, index))


def test_non_canonical_base64_is_refused(cipher: PiiCipher) -> None:
    token = cipher.encrypt("11010519491231002X")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 46 bytes take 62 characters; the last one carries 2 data bits and 4 unused ones.
    last = alphabet.index(token[-1])
    respelled = token[:-1] + alphabet[last ^ 0b0001]
    with pytest.raises(PiiError, match="canonical"):
        cipher.decrypt(respelled)


def test_wrong_key_is_detected(cipher: PiiCipher) -> None:
    token = cipher.encrypt("11010519491231002X")
    other = PiiCipher(OTHER_KEY, HASH_KEY)
    with pytest.raises(PiiError, match="tampered or wrong key"):
        other.decrypt(token)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("11010519491231002X", id="clear-text"),
        pytest.param("v2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", id="unknown-version"),
        pytest.param("v1.", id="no-body"),
        pytest.param("v1.AAAA", id="too-short"),
        pytest.param("v1.AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", id="space-in-body"),
        pytest.param("v1.AAAA+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", id="standard-alphabet"),
        pytest.param("v1.AAAAA", id="impossible-length"),
        pytest.param("v1.ÄÄÄÄ", id="non-ascii"),
    ],
)
def test_bad_format_is_refused(cipher: PiiCipher, token: str) -> None:
    with pytest.raises(PiiError):
        cipher.decrypt(token)


def test_non_string_token_is_refused(cipher: PiiCipher) -> None:
    with pytest.raises(PiiError):
        cipher.decrypt(b"v1.AAAA")  # type: ignore[arg-type]


def test_keyed_hash_is_stable_hex(cipher: PiiCipher) -> None:
    first = cipher.keyed_hash("11010519491231002X")
    assert first == cipher.keyed_hash("11010519491231002X")
    assert first == PiiCipher(OTHER_KEY, HASH_KEY).keyed_hash("11010519491231002X")
    assert len(first) == 64
    assert int(first, 16) >= 0


def test_keyed_hash_depends_on_the_hash_key(cipher: PiiCipher) -> None:
    other = PiiCipher(ENC_KEY, OTHER_KEY)
    assert cipher.keyed_hash("11010519491231002X") != other.keyed_hash("11010519491231002X")


def test_keyed_hash_distinguishes_values(cipher: PiiCipher) -> None:
    assert cipher.keyed_hash("11010519491231002X") != cipher.keyed_hash("110105194912310039")


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param("11010519491231002x", id="lowercase"),
        pytest.param(" 110105 19491231 002X ", id="spaces"),
        pytest.param("110105\u300019491231002X", id="full-width-space"),
        pytest.param("１１０１０５１９４９１２３１００２Ｘ", id="full-width-digits"),
    ],
)
def test_keyed_hash_normalizes(cipher: PiiCipher, spelling: str) -> None:
    assert cipher.keyed_hash(spelling) == cipher.keyed_hash("11010519491231002X")


@pytest.mark.parametrize(
    ("encryption_key", "hash_key"),
    [
        pytest.param(bytes(31), HASH_KEY, id="encryption-31"),
        pytest.param(bytes(33), HASH_KEY, id="encryption-33"),
        pytest.param(b"", HASH_KEY, id="encryption-empty"),
        pytest.param(ENC_KEY, bytes(16), id="hash-16"),
        pytest.param(ENC_KEY, bytes(64), id="hash-64"),
        pytest.param("x" * 32, HASH_KEY, id="encryption-str"),
        pytest.param(ENC_KEY, ENC_KEY, id="same-key-twice"),
    ],
)
def test_bad_keys_are_refused(encryption_key: bytes, hash_key: bytes) -> None:
    with pytest.raises(PiiError):
        PiiCipher(encryption_key, hash_key)


def test_generated_keys_work_with_from_base64() -> None:
    first, second = generate_key_b64(), generate_key_b64()
    assert first != second
    assert len(base64.urlsafe_b64decode(first)) == 32
    cipher = PiiCipher.from_base64(first, second)
    assert cipher.decrypt(cipher.encrypt("李四")) == "李四"


def test_from_base64_accepts_both_alphabets_and_missing_padding() -> None:
    standard = base64.b64encode(bytes([0xFB] * 32)).decode()
    assert "+" in standard or "/" in standard
    urlsafe = base64.urlsafe_b64encode(bytes([0xFB] * 32)).decode().rstrip("=")
    a = PiiCipher.from_base64(standard, base64.b64encode(HASH_KEY).decode())
    b = PiiCipher.from_base64(urlsafe, base64.b64encode(HASH_KEY).decode())
    assert b.decrypt(a.encrypt("same key")) == "same key"


@pytest.mark.parametrize(
    ("encryption_key_b64", "hash_key_b64"),
    [
        pytest.param(base64.b64encode(bytes(16)).decode(), generate_key_b64(), id="16-bytes"),
        pytest.param(base64.b64encode(bytes(48)).decode(), generate_key_b64(), id="48-bytes"),
        pytest.param("not base64!", generate_key_b64(), id="not-base64"),
        pytest.param("", generate_key_b64(), id="empty"),
        pytest.param(generate_key_b64(), "short", id="hash-short"),
    ],
)
def test_from_base64_refuses_bad_keys(encryption_key_b64: str, hash_key_b64: str) -> None:
    with pytest.raises(PiiError):
        PiiCipher.from_base64(encryption_key_b64, hash_key_b64)


def test_repr_hides_keys(cipher: PiiCipher) -> None:
    text = repr(cipher)
    assert ENC_KEY.hex() not in text
    assert "hidden" in text
