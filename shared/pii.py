"""Personal data at rest: AES-256-GCM tokens for storage, keyed hashes for matching."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import unicodedata
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16

# The token's version names the format and the key generation. Rotation adds "v2" with new keys
# while a key ring still holds the v1 key to read old rows; the prefix tells which key to use.
TOKEN_VERSION: Final = "v1"
_PREFIX: Final = TOKEN_VERSION + "."
# Bound into every ciphertext as associated data, so a token cannot be relabelled as another
# version or reused by a different system sharing the key.
_AAD: Final = b"fangpin-pii:" + TOKEN_VERSION.encode("ascii")
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")


class PiiError(ValueError):
    """Key material or a token that cannot be used; never carries the clear text."""


def generate_key_b64() -> str:
    """Return a new random 32-byte key, urlsafe base64 encoded."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


class PiiCipher:
    """Encrypts personal data for storage and hashes it with a separate key for matching."""

    __slots__ = ("_aead", "_hash_key")

    def __init__(self, encryption_key: bytes, hash_key: bytes) -> None:
        _check_key("encryption_key", encryption_key)
        _check_key("hash_key", hash_key)
        # One key for two purposes would let a weakness in one use spill into the other.
        if hmac.compare_digest(encryption_key, hash_key):
            raise PiiError("encryption_key and hash_key must be different keys")
        self._aead = AESGCM(encryption_key)
        self._hash_key = bytes(hash_key)

    @classmethod
    def from_base64(cls, encryption_key_b64: str, hash_key_b64: str) -> PiiCipher:
        """Build a cipher from two base64 keys (standard or urlsafe alphabet) of 32 bytes each."""
        return cls(
            _decode_key("encryption_key", encryption_key_b64),
            _decode_key("hash_key", hash_key_b64),
        )

    def __repr__(self) -> str:
        return "PiiCipher(<keys hidden>)"

    def encrypt(self, plain: str) -> str:
        """Return a compact ASCII token `v1.<base64url(nonce || ciphertext || tag)>`."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain.encode("utf-8"), _AAD)
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return _PREFIX + body

    def decrypt(self, token: str) -> str:
        """Return the clear text of a token, or raise PiiError if it is malformed or forged."""
        if not isinstance(token, str) or not token.startswith(_PREFIX):
            raise PiiError(f"not a PII token of version {TOKEN_VERSION}")
        body = token[len(_PREFIX) :]
        # Checked up front because the base64 decoder silently skips characters it does not know.
        if not _BASE64URL.fullmatch(body):
            raise PiiError("PII token is not valid base64url")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise PiiError("PII token is not valid base64url") from None
        # Unused low bits of the last character would let two spellings carry the same bytes.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != body:
            raise PiiError("PII token is not in canonical base64url")
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise PiiError("PII token is too short")
        try:
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _AAD)
        except InvalidTag:
            raise PiiError("PII token failed authentication: tampered or wrong key") from None
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise PiiError("PII token does not hold UTF-8 text") from None

    def keyed_hash(self, plain: str) -> str:
        """Return HMAC-SHA256 (hex) of the normalized value, for matching without clear text."""
        message = normalize_for_hash(plain).encode("utf-8")
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()


def normalize_for_hash(plain: str) -> str:
    """Fold the spellings of one value together: NFKC, no whitespace at all, upper case."""
    # Every service must hash the same person to the same value, whether an ID number arrives
    # as `110105 19491231 002x` or with full-width digits from a Chinese input method.
    folded = unicodedata.normalize("NFKC", plain)
    return "".join(ch for ch in folded if not ch.isspace()).upper()


def _check_key(name: str, key: bytes) -> None:
    """Refuse anything but exactly 32 bytes."""
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        raise PiiError(f"{name} must be exactly {KEY_BYTES} bytes")


def _decode_key(name: str, encoded: str) -> bytes:
    """Decode a base64 key strictly, accepting both alphabets and missing padding."""
    if not isinstance(encoded, str):
        raise PiiError(f"{name} must be a base64 string")
    text = encoded.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PiiError(f"{name} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise PiiError(f"{name} must decode to exactly {KEY_BYTES} bytes, not {len(key)}")
    return key
