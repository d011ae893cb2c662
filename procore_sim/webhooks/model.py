"""The Webhooks API's objects (hooks, triggers, queued events, attempts) and request checks."""

from __future__ import annotations

import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from procore_sim.webhooks.resources import EVENT_TYPES, RESOURCE_NAMES

NAMESPACE = re.compile(r"^[a-z0-9-]+$")
API_VERSIONS = ("v2", "v2.0")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class WebhookError(Exception):
    """A request the Webhooks API refuses: status and Procore-style body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def ulid(moment: float) -> str:
    """A 26-character ULID: 48 bits of milliseconds, then 80 random bits, Crockford base32."""
    value = (int(moment * 1000) << 80) | secrets.randbits(80)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def stamp(moment: float) -> str:
    """UTC with microseconds and a Z, as Procore's webhook timestamps."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Hook:
    """A webhooks hook: where deliveries go and who owns it."""

    id: int
    company_id: int
    project_id: int | None
    api_version: str
    namespace: str
    destination_url: str
    destination_headers: dict[str, str]
    owned_by_user_id: int

    def to_json(self) -> dict[str, Any]:
        """The WebhooksHook model."""
        return {
            "id": self.id,
            "api_version": self.api_version,
            "namespace": self.namespace,
            "destination_url": self.destination_url,
            "destination_headers": dict(self.destination_headers),
            "owned_by_company_id": self.company_id if self.project_id is None else None,
            "owned_by_project_id": self.project_id,
            "owned_by_user_id": self.owned_by_user_id,
        }


@dataclass
class Trigger:
    """A webhooks trigger: one (resource_name, event_type) of a hook."""

    id: int
    hook_id: int
    resource_name: str
    event_type: str
    company_id: int
    project_id: int | None
    user_id: int

    def to_json(self) -> dict[str, Any]:
        """The WebhooksTrigger model."""
        return {
            "id": self.id,
            "webhook_hook_id": self.hook_id,
            "resource_name": self.resource_name,
            "resource_id": None,
            "event_type": self.event_type,
            "company_id": self.company_id if self.project_id is None else None,
            "project_id": self.project_id,
            "user_id": self.user_id,
        }


@dataclass
class Pending:
    """One event waiting for delivery to one hook."""

    hook_id: int
    event: dict[str, Any]
    queued_at: float


@dataclass
class Endpoint:
    """Every pending delivery to one destination URL; a failure pauses all of them."""

    url: str
    items: deque[Pending] = field(default_factory=deque)
    failures: int = 0
    failing_since: float | None = None
    next_attempt_at: float = 0.0

    def to_json(self, now: float) -> dict[str, Any]:
        """The control API's view of this queue."""
        return {
            "destination_url": self.url,
            "pending": [{"hook_id": p.hook_id, "event": p.event} for p in self.items],
            "failures": self.failures,
            "failing_since": self.failing_since,
            "next_attempt_in": max(self.next_attempt_at - now, 0.0),
        }


@dataclass
class Attempt:
    """What the dispatcher learned from one POST."""

    ok: bool
    status: int | None
    headers: dict[str, str]
    body: str | None
    error: str | None
    started_at: float
    completed_at: float


def hook_spec(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """The checked hook settings of a create (or, partial, an update) body; 400/422 if bad."""
    hook = body.get("hook")
    if not isinstance(hook, dict):
        raise WebhookError(400, {"errors": {"hook": ["is missing"]}})
    errors: dict[str, list[str]] = {}
    spec: dict[str, Any] = {}
    for name in ("api_version", "destination_url"):
        if name in hook or not partial:
            value = hook.get(name)
            if not isinstance(value, str) or not value.strip():
                errors[name] = ["can't be blank"]
            else:
                spec[name] = value.strip()
    if "api_version" in spec and spec["api_version"] not in API_VERSIONS:
        errors["api_version"] = ["this simulator delivers the v2.0 payload only: use v2"]
    url = spec.get("destination_url", "")
    if url and not url.startswith(("http://", "https://")):
        errors["destination_url"] = ["must be an http(s) URL"]
    if "namespace" in hook:
        namespace = hook.get("namespace")
        if not isinstance(namespace, str) or not NAMESPACE.match(namespace):
            errors["namespace"] = ["may contain only lowercase letters, digits and dashes"]
        else:
            spec["namespace"] = namespace
    if "destination_headers" in hook:
        headers = hook.get("destination_headers")
        if headers is None:
            headers = {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            errors["destination_headers"] = ["must be an object of strings"]
        else:
            spec["destination_headers"] = dict(headers)
    if errors:
        raise WebhookError(422, {"errors": errors})
    return spec


def trigger_spec(spec: Any) -> tuple[str, str]:
    """(resource_name, event_type) of a trigger spec; 400/422 if bad."""
    if not isinstance(spec, dict):
        raise WebhookError(400, {"errors": {"trigger": ["is missing"]}})
    resource = spec.get("resource_name")
    event_type = spec.get("event_type")
    if resource not in RESOURCE_NAMES:
        raise WebhookError(
            422,
            {
                "code": "invalid",
                "message": f"Unknown resource_name {resource!r}",
                "trigger": {"resource_name": resource},
                "errors": {"resource_name": "is not a webhooks resource"},
            },
        )
    if event_type not in EVENT_TYPES:
        raise WebhookError(
            422,
            {
                "code": "invalid",
                "message": "event_type must be create, update or delete",
                "trigger": {"resource_name": resource},
                "errors": {"event_type": "is not included in the list"},
            },
        )
    return str(resource), str(event_type)
