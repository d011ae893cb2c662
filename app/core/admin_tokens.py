"""CONNECTOR_ADMIN_TOKENS: named admin tokens with roles, and the refusal of weak ones.

The variable's grammar (SPEC section 2) lives here, below every domain, so the settings can
refuse a bad value at start-up; what each role may do is the admin edge's business
(`app/admin/auth.py`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, SecretStr


class AdminRole(StrEnum):
    """What an admin token may do (SPEC section 4); the admin edge maps roles to permissions."""

    viewer = "viewer"
    operator = "operator"
    admin = "admin"


class AdminToken(BaseModel):
    """One entry of CONNECTOR_ADMIN_TOKENS: a name (for the audit trail), a role and the token."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: AdminRole
    token: SecretStr


ADMIN_TOKEN_MIN_LENGTH = 32
TOKEN_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
# Fragments of the placeholders in deploy/ (and of the usual ones elsewhere): a token holding
# one was copied from an example, not generated.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "replace-me", "placeholder", "example", "xxxxxxxx")


def _check_token(position: int, name: str, token: str) -> None:
    """Refuses short, placeholder or low-variety tokens; never echoes the token."""
    where = f"entry {position} ({name})"
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise ValueError(f"{where}: the token must not contain spaces or control characters")
    if len(token) < ADMIN_TOKEN_MIN_LENGTH:
        raise ValueError(
            f"{where}: the token is shorter than {ADMIN_TOKEN_MIN_LENGTH} characters; "
            "make one with: openssl rand -hex 32"
        )
    lowered = token.lower()
    if any(marker in lowered for marker in PLACEHOLDER_MARKERS) or len(set(token)) < 8:
        raise ValueError(
            f"{where}: the token is a placeholder from an example; "
            "make one with: openssl rand -hex 32"
        )


def parse_admin_tokens(entries: list[str]) -> list[AdminToken]:
    """Parses `NAME:ROLE:TOKEN` entries (a bare `TOKEN` is an admin named `token-N`).

    Raises ValueError naming the entry by position and name, never by its token.
    """
    tokens: list[AdminToken] = []
    for position, entry in enumerate(entries, start=1):
        if ":" in entry:
            name, _, rest = entry.partition(":")
            role_text, sep, token = rest.partition(":")
            if not sep or not TOKEN_NAME_PATTERN.fullmatch(name):
                raise ValueError(
                    f"entry {position} must be NAME:ROLE:TOKEN (NAME of letters, digits, "
                    "_ . @ -) or a bare TOKEN"
                )
            try:
                role = AdminRole(role_text)
            except ValueError:
                raise ValueError(
                    f"entry {position} ({name}): ROLE must be viewer, operator or admin"
                ) from None
        else:
            name, role, token = f"token-{position}", AdminRole.admin, entry
        _check_token(position, name, token)
        if any(known.name == name for known in tokens):
            raise ValueError(f"entry {position}: the name {name!r} appears twice")
        if any(known.token.get_secret_value() == token for known in tokens):
            raise ValueError(f"entry {position} ({name}): the same token appears twice")
        tokens.append(AdminToken(name=name, role=role, token=SecretStr(token)))
    return tokens


def _digest(token: str) -> bytes:
    # Hashing first makes every comparison the same length, so not even a length leaks.
    return hashlib.sha256(token.encode()).digest()


def find_token(presented: str, accepted: list[AdminToken]) -> AdminToken | None:
    """The entry whose token is `presented`, in time independent of which (or none)."""
    wanted = _digest(presented)
    found: AdminToken | None = None
    for entry in accepted:
        if hmac.compare_digest(wanted, _digest(entry.token.get_secret_value())):
            found = entry
    return found


def bearer_credentials(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()
