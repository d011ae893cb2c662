"""Standard Webhooks signing and verification (webhook-id, webhook-timestamp, webhook-signature)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the public prefix, not a secret
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
# A signature header carries a handful of signatures during key rotation, never hundreds.
MAX_SIGNATURES = 16


class WebhookVerificationError(Exception):
    """A webhook's signature headers are missing, malformed, stale or do not match."""


def generate_signing_secret() -> str:
    """Returns a new secret: 'whsec_' + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """Returns the HMAC key of a 'whsec_...' secret (the prefix is optional)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("signing secret must be 'whsec_' followed by base64") from error
    if not key:
        raise ValueError("signing secret must not be empty")
    return key


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """Returns the webhook-signature value 'v1,<base64 HMAC-SHA256 of id.timestamp.body>'."""
    digest = _digest(decode_secret(secret), msg_id, timestamp, _as_bytes(body))
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_headers(
    secret: str, msg_id: str, body: bytes | str, *, timestamp: int | None = None
) -> dict[str, str]:
    """Returns the three Standard Webhooks headers for a message sent now."""
    when = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(when),
        "webhook-signature": sign(secret, msg_id, when, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> None:
    """Returns if one v1 signature matches and the timestamp is fresh; raises otherwise."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    timestamp_text = lowered.get("webhook-timestamp", "")
    signature_text = lowered.get("webhook-signature", "")
    for name, value in (
        ("webhook-id", msg_id),
        ("webhook-timestamp", timestamp_text),
        ("webhook-signature", signature_text),
    ):
        if not value:
            raise WebhookVerificationError(f"missing {name} header")
    if not (timestamp_text.isascii() and timestamp_text.isdigit()) or len(timestamp_text) > 12:
        raise WebhookVerificationError("webhook-timestamp is not a Unix time in seconds")
    timestamp = int(timestamp_text)
    current = time.time() if now is None else now
    if timestamp < current - tolerance_seconds:
        raise WebhookVerificationError("webhook-timestamp is too old")
    if timestamp > current + tolerance_seconds:
        raise WebhookVerificationError("webhook-timestamp is too far in the future")
    try:
        key = decode_secret(secret)
    except ValueError as error:
        raise WebhookVerificationError("the verifying secret is malformed") from error
    expected = base64.b64encode(_digest(key, msg_id, timestamp, _as_bytes(body)))
    candidates = signature_text.split()[:MAX_SIGNATURES]
    matched = False
    for candidate in candidates:
        version, _, value = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        # Compare every candidate, in constant time, so timing tells nothing about which matched.
        matched |= hmac.compare_digest(value.encode("utf-8"), expected)
    if not matched:
        raise WebhookVerificationError("no webhook-signature matches")
