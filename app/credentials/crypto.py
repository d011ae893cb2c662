"""AES-256-GCM envelope for stored secrets: each ciphertext is bound to its company and kind."""

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


@dataclass(frozen=True, slots=True)
class Sealed:
    """A ciphertext with what is needed to open it again (the key id travels with the value)."""

    key_id: str
    nonce: bytes
    ciphertext: bytes


def associated_data(company_id: int, kind: str) -> bytes:
    """Binds a ciphertext to one company and one kind of secret, so rows cannot be swapped."""
    return f"procore-connector/v1/{company_id}/{kind}".encode()


class Keyring:
    """The configured keys; the first one is primary and encrypts every new value."""

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

    def seal(self, plaintext: str, *, company_id: int, kind: str) -> Sealed:
        """Encrypts a secret under the primary key."""
        nonce = os.urandom(NONCE_BYTES)
        aad = associated_data(company_id, kind)
        ciphertext = self._keys[self.primary_id].encrypt(nonce, plaintext.encode(), aad)
        return Sealed(self.primary_id, nonce, ciphertext)

    def open(self, sealed: Sealed, *, company_id: int, kind: str) -> str:
        """Decrypts a secret; fails if its key is missing or it was moved to another row."""
        cipher = self._keys.get(sealed.key_id)
        if cipher is None:
            raise DecryptionError(f"encryption key {sealed.key_id!r} is not configured")
        try:
            plain = cipher.decrypt(
                sealed.nonce, sealed.ciphertext, associated_data(company_id, kind)
            )
        except InvalidTag:
            raise DecryptionError(
                f"stored {kind} of company {company_id} does not decrypt (tampered or moved)"
            ) from None
        return plain.decode()

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
