"""Pydantic shapes of the audit trail: who acts, and one event as the API shows it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class Source(StrEnum):
    """Through which door a change came."""

    api = "api"
    console = "console"


class Action(StrEnum):
    """What was done; the names the audit filter takes."""

    installation_create = "installation.create"
    installation_update = "installation.update"
    installation_pause = "installation.pause"
    installation_resume = "installation.resume"
    installation_uninstall = "installation.uninstall"
    installation_purge = "installation.purge"
    credentials_replace = "credentials.replace"
    signing_secret_rotate = "signing_secret.rotate"  # noqa: S105 - an action name
    sync_queue = "sync.queue"
    webhooks_update = "webhooks.update"
    webhook_secret_rotate = "webhook_secret.rotate"  # noqa: S105 - an action name
    sync_cancel = "sync.cancel"
    sign_in = "console.sign_in"
    sign_in_failed = "console.sign_in_failed"
    sign_out = "console.sign_out"


class Actor(BaseModel):
    """Who acts: the token's name and role, the door and the caller's address."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: str | None
    source: Source
    ip: str | None


class AuditEventView(BaseModel):
    """One audit entry (SPEC section 4): who, what, target, when, from where, before/after."""

    id: int
    recorded_at: datetime
    actor: str
    role: str | None
    source: str
    ip: str | None
    action: str
    target: str | None
    company_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
