"""Standard Webhooks signing and verification (webhook-id, webhook-timestamp, webhook-signature).

The HMAC itself is the reference `standardwebhooks` library's; this module adds strict secret
and header parsing (a malformed header is a verification failure, never a crash) and signing
with several secrets at once, so a receiver can roll over to a new secret without an outage.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

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


def _as_text(body: bytes | str) -> str:
    # JSON bodies are UTF-8 (RFC 8259), and the library signs text: decoding strictly keeps
    # the signed bytes exactly the bytes sent.
    return body.decode("utf-8") if isinstance(body, bytes) else body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """Returns the webhook-signature value 'v1,<base64 HMAC-SHA256 of id.timestamp.body>'."""
    webhook = Webhook(decode_secret(secret))
    return webhook.sign(msg_id, datetime.fromtimestamp(timestamp, UTC), _as_text(body))


def signature_headers(
    secret: str | Sequence[str],
    msg_id: str,
    body: bytes | str,
    *,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Returns the three Standard Webhooks headers for a message sent now.

    With several secrets (the current one first, then those still in their grace period) the
    signature header carries one space-separated `v1,` signature per secret.
    """
    when = int(time.time()) if timestamp is None else timestamp
    keys = [secret] if isinstance(secret, str) else list(secret)
    if not keys:
        raise ValueError("signing needs at least one secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(when),
        "webhook-signature": " ".join(sign(key, msg_id, when, body) for key in keys),
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
        decode_secret(secret)
    except ValueError as error:
        raise WebhookVerificationError("the verifying secret is malformed") from error
    try:
        expected = sign(secret, msg_id, timestamp, body).partition(",")[2].encode("ascii")
    except UnicodeDecodeError:
        raise WebhookVerificationError("the body is not UTF-8") from None
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
