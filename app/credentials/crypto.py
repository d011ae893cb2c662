"""AES-256-GCM for stored secrets: service keys wrap per-company data keys, which seal secrets.

Each ciphertext is bound by its associated data to what it belongs to: a secret to its company
and kind, a data key to its company, a key-check value to its key id.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core.errors import ConfigurationError, DecryptionError
from app.core.settings import KEY_ID_PATTERN, EncryptionKey

NONCE_BYTES = 12
DATA_KEY_BYTES = 32
KEY_CHECK_PLAINTEXT = b"procore-connector key check"


@dataclass(frozen=True, slots=True)
class Sealed:
    """A ciphertext with what is needed to open it again (the key id travels with the value)."""

    key_id: str
    nonce: bytes
    ciphertext: bytes


def associated_data(company_id: int, kind: str) -> bytes:
    """Binds a ciphertext to one company and one kind of secret, so rows cannot be swapped."""
    return f"procore-connector/v1/{company_id}/{kind}".encode()


def data_key_associated_data(company_id: int) -> bytes:
    """Binds a wrapped data key to its company, so one company's key cannot open another's."""
    return f"procore-connector/data-key/v1/{company_id}".encode()


def key_check_associated_data(key_id: str) -> bytes:
    """Binds a key-check value to its key id."""
    return f"procore-connector/key-check/v1/{key_id}".encode()


class DataKeyCipher:
    """One company's data key (256 random bits), unwrapped; it seals that company's secrets."""

    __slots__ = ("_cipher", "company_id", "row_id")

    def __init__(self, row_id: int, company_id: int, key: bytes) -> None:
        self.row_id = row_id
        self.company_id = company_id
        self._cipher = AESGCM(key)

    def __repr__(self) -> str:
        return f"DataKeyCipher(row_id={self.row_id}, company_id={self.company_id})"

    def seal(self, plaintext: str, *, kind: str) -> tuple[bytes, bytes]:
        """Encrypts a secret of this company; returns (nonce, ciphertext)."""
        nonce = os.urandom(NONCE_BYTES)
        aad = associated_data(self.company_id, kind)
        return nonce, self._cipher.encrypt(nonce, plaintext.encode(), aad)

    def open(self, nonce: bytes, ciphertext: bytes, *, kind: str) -> str:
        """Decrypts a secret of this company; fails if it was moved to another row."""
        try:
            plain = self._cipher.decrypt(nonce, ciphertext, associated_data(self.company_id, kind))
        except InvalidTag:
            raise DecryptionError(
                f"stored {kind} of company {self.company_id} does not decrypt (tampered or moved)"
            ) from None
        return plain.decode()


def new_data_key_bytes() -> bytes:
    """Fresh key material for a company's data key."""
    return os.urandom(DATA_KEY_BYTES)


class Keyring:
    """The configured service keys; the first one is primary and wraps every new data key."""

    def __init__(self, keys: list[EncryptionKey]) -> None:
        if not keys:
            raise ConfigurationError(
                "CONNECTOR_ENCRYPTION_KEYS: no encryption key configured "
                "(generate one with `connector keys generate`)"
            )
        self._keys = {key.key_id: AESGCM(key.key) for key in keys}
        self.primary_id = keys[0].key_id

    @property
    def key_ids(self) -> list[str]:
        """Ids of every usable key, primary first."""
        return list(self._keys)

    def _cipher(self, key_id: str) -> AESGCM:
        cipher = self._keys.get(key_id)
        if cipher is None:
            raise DecryptionError(f"encryption key {key_id!r} is not configured")
        return cipher

    def seal(self, plaintext: str, *, company_id: int, kind: str) -> Sealed:
        """Encrypts a secret directly under the primary key (the format before data keys)."""
        nonce = os.urandom(NONCE_BYTES)
        aad = associated_data(company_id, kind)
        ciphertext = self._keys[self.primary_id].encrypt(nonce, plaintext.encode(), aad)
        return Sealed(self.primary_id, nonce, ciphertext)

    def open(self, sealed: Sealed, *, company_id: int, kind: str) -> str:
        """Decrypts a secret sealed directly under a service key; fails if it was moved."""
        cipher = self._cipher(sealed.key_id)
        try:
            plain = cipher.decrypt(
                sealed.nonce, sealed.ciphertext, associated_data(company_id, kind)
            )
        except InvalidTag:
            raise DecryptionError(
                f"stored {kind} of company {company_id} does not decrypt (tampered or moved)"
            ) from None
        return plain.decode()

    def wrap_data_key(self, key: bytes, *, company_id: int) -> Sealed:
        """Encrypts a company's data key under the primary key."""
        nonce = os.urandom(NONCE_BYTES)
        aad = data_key_associated_data(company_id)
        return Sealed(self.primary_id, nonce, self._keys[self.primary_id].encrypt(nonce, key, aad))

    def unwrap_data_key(self, sealed: Sealed, *, company_id: int) -> bytes:
        """Decrypts a company's data key; fails if its key is missing or it was moved."""
        cipher = self._cipher(sealed.key_id)
        try:
            return cipher.decrypt(
                sealed.nonce, sealed.ciphertext, data_key_associated_data(company_id)
            )
        except InvalidTag:
            raise DecryptionError(
                f"data key of company {company_id} does not decrypt under key "
                f"{sealed.key_id!r} (tampered, moved or wrong key bytes)"
            ) from None

    def key_check(self, key_id: str) -> Sealed:
        """A value that only these key bytes produce and open: stored once per key id."""
        nonce = os.urandom(NONCE_BYTES)
        aad = key_check_associated_data(key_id)
        return Sealed(key_id, nonce, self._cipher(key_id).encrypt(nonce, KEY_CHECK_PLAINTEXT, aad))

    def matches_check(self, check: Sealed) -> bool:
        """Whether the configured bytes of `check.key_id` are the ones that wrote `check`."""
        try:
            plain = self._cipher(check.key_id).decrypt(
                check.nonce, check.ciphertext, key_check_associated_data(check.key_id)
            )
        except InvalidTag:
            return False
        return plain == KEY_CHECK_PLAINTEXT

    def self_test(self) -> None:
        """Round-trips a value under the primary key (readiness check)."""
        sealed = self.seal("ready", company_id=0, kind="self-test")
        if self.open(sealed, company_id=0, kind="self-test") != "ready":
            raise DecryptionError("encryption self-test failed")


def generate_key(key_id: str | None = None) -> str:
    """A new `key_id:base64url(32 random bytes)` entry for CONNECTOR_ENCRYPTION_KEYS."""
    name = key_id or f"k{secrets.token_hex(4)}"
    if not KEY_ID_PATTERN.match(name):
        raise ValueError("a key id is 1 to 64 letters, digits, '.', '_' or '-'")
    return f"{name}:{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}"
