"""Webhooks state: hooks, triggers, queued events per destination, and the delivery record.

Procore's Webhooks API as documented (procore-api.md section 8; plan_your_app/webhooks.md and
webhooks_api.md in procore/documentation): a hook is company- or project-scoped and names a
destination URL and static headers; triggers pick (resource_name, event_type); every change
is delivered at least once as a v2.0 payload; a failure pauses every delivery to that
destination, which is retried with exponential backoff (1 s doubling to 1 h) and flushed as
`discarded` after 12 hours. Thread-safe by its own lock; the asyncio dispatcher does the I/O.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from procore_sim.webhooks.model import (
    Attempt,
    Endpoint,
    Hook,
    Pending,
    Trigger,
    WebhookError,
    hook_spec,
    stamp,
    trigger_spec,
    ulid,
)

EVENT_ID_BASE = 1 << 40


Scope = tuple[int, int | None]  # (company_id, project_id or None)


class WebhookHub:
    """Hooks, triggers, event queues and deliveries of one simulated Procore."""

    def __init__(self, notify: Callable[[], None] | None = None) -> None:
        self.lock = threading.RLock()
        self._notify = notify or (lambda: None)
        self._ids = iter(range(1, 1 << 62))
        self._event_ids = iter(range(EVENT_ID_BASE, EVENT_ID_BASE + (1 << 50)))
        self._delivery_ids = iter(range(1, 1 << 62))
        self.hooks: dict[int, Hook] = {}
        self.triggers: dict[int, Trigger] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.held = False

    # ---- hooks ------------------------------------------------------------------------------
    def create_hook(self, scope: Scope, body: dict[str, Any], user_id: int) -> Hook:
        """A new hook from a {hook: {api_version, namespace, destination_url, ...}} body."""
        spec = hook_spec(body, partial=False)
        with self.lock:
            hook = Hook(
                next(self._ids),
                scope[0],
                scope[1],
                spec["api_version"],
                spec.get("namespace", ""),
                spec["destination_url"],
                spec.get("destination_headers", {}),
                user_id,
            )
            self.hooks[hook.id] = hook
            return hook

    def list_hooks(
        self, scope: Scope, namespace: str | None, api_version: str | None
    ) -> list[Hook]:
        """Hooks of exactly this scope, optionally of one namespace and api_version."""
        with self.lock:
            return [
                h
                for h in self.hooks.values()
                if (h.company_id, h.project_id) == scope
                and (namespace is None or h.namespace == namespace)
                and (api_version is None or h.api_version == api_version)
            ]

    def hook(self, scope: Scope, hook_id: int) -> Hook:
        """A hook of this scope, or 404."""
        with self.lock:
            found = self.hooks.get(hook_id)
        if found is None or (found.company_id, found.project_id) != scope:
            raise WebhookError(404, {"errors": f"Webhooks hook {hook_id} not found"})
        return found

    def update_hook(self, scope: Scope, hook_id: int, body: dict[str, Any]) -> Hook:
        """Changes some of a hook's settings."""
        spec = hook_spec(body, partial=True)
        with self.lock:
            hook = self.hook(scope, hook_id)
            hook.api_version = spec.get("api_version", hook.api_version)
            hook.namespace = spec.get("namespace", hook.namespace)
            hook.destination_url = spec.get("destination_url", hook.destination_url)
            hook.destination_headers = spec.get("destination_headers", hook.destination_headers)
            return hook

    def delete_hook(self, scope: Scope, hook_id: int) -> None:
        """Deletes a hook, its triggers and its undelivered events."""
        with self.lock:
            self.hook(scope, hook_id)
            del self.hooks[hook_id]
            for trigger_id in [t.id for t in self.triggers.values() if t.hook_id == hook_id]:
                del self.triggers[trigger_id]
            for endpoint in self.endpoints.values():
                endpoint.items = deque(p for p in endpoint.items if p.hook_id != hook_id)

    # ---- triggers ---------------------------------------------------------------------------
    def create_trigger(self, scope: Scope, hook_id: int, spec: Any, user_id: int) -> Trigger:
        """A new trigger, or WebhookError(422) for an unknown resource, event or a duplicate."""
        with self.lock:
            self.hook(scope, hook_id)
            resource, event_type = trigger_spec(spec)
            for trigger in self.triggers.values():
                if (trigger.hook_id, trigger.resource_name, trigger.event_type) == (
                    hook_id,
                    resource,
                    event_type,
                ):
                    raise WebhookError(
                        422,
                        {
                            "code": "taken",
                            "message": "Trigger already exists",
                            "trigger": {"resource_name": resource},
                            "errors": {"event_type": "has already been taken"},
                        },
                    )
            trigger = Trigger(
                next(self._ids), hook_id, resource, event_type, scope[0], scope[1], user_id
            )
            self.triggers[trigger.id] = trigger
            return trigger

    def list_triggers(self, scope: Scope, hook_id: int) -> list[Trigger]:
        """Triggers of a hook."""
        with self.lock:
            self.hook(scope, hook_id)
            return [t for t in self.triggers.values() if t.hook_id == hook_id]

    def delete_trigger(self, scope: Scope, hook_id: int, trigger_id: int) -> None:
        """Deletes one trigger of a hook, or 404."""
        with self.lock:
            self.hook(scope, hook_id)
            trigger = self.triggers.get(trigger_id)
            if trigger is None or trigger.hook_id != hook_id:
                raise WebhookError(404, {"errors": f"Webhooks trigger {trigger_id} not found"})
            del self.triggers[trigger_id]

    # ---- events and deliveries --------------------------------------------------------------
    def emit(
        self,
        *,
        company_id: int,
        project_id: int | None,
        resource_name: str,
        resource_id: int,
        event_type: str,
        user_id: int,
        now: float,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Queues one v2.0 event for every matching hook; returns how many were queued."""
        with self.lock:
            matching = [
                hook
                for hook in self.hooks.values()
                if hook.company_id == company_id
                and (hook.project_id is None or hook.project_id == project_id)
                and any(
                    t.hook_id == hook.id
                    and t.resource_name == resource_name
                    and t.event_type == event_type
                    for t in self.triggers.values()
                )
            ]
            if not matching:
                return 0
            event = {
                "id": next(self._event_ids),
                "ulid": ulid(now),
                "timestamp": stamp(now),
                "user_id": user_id,
                "company_id": company_id,
                "project_id": project_id,
                "api_version": "v2.0",
                "event_type": event_type,
                "resource_name": resource_name,
                "resource_id": resource_id,
                "metadata": {
                    "source_user_id": user_id,
                    "source_company_id": company_id,
                    "source_project_id": project_id,
                    "source_application_id": None,
                    "source_operation_id": None,
                    **(metadata or {}),
                },
            }
            for hook in matching:
                self._queue(hook, dict(event), now)
        self._notify()
        return len(matching)

    def _queue(self, hook: Hook, event: dict[str, Any], now: float) -> None:
        endpoint = self.endpoints.setdefault(hook.destination_url, Endpoint(hook.destination_url))
        endpoint.items.append(Pending(hook.id, event, now))

    def due(self, now: float) -> list[Endpoint]:
        """Endpoints with something to deliver whose pause (if any) is over."""
        with self.lock:
            if self.held:
                return []
            return [e for e in self.endpoints.values() if e.items and e.next_attempt_at <= now]

    def next_due_in(self, now: float) -> float | None:
        """Seconds until the earliest endpoint with events is due (0 if one already is).

        None when nothing waits. An endpoint that became due since the pass looked counts:
        leaving it out would park the dispatcher until the next change.
        """
        with self.lock:
            waits = [e.next_attempt_at - now for e in self.endpoints.values() if e.items]
        return max(min(waits), 0.0) if waits and not self.held else None

    def head(self, endpoint: Endpoint) -> tuple[Pending, Hook] | None:
        """The next delivery of an endpoint and its hook (dropping events of deleted hooks)."""
        with self.lock:
            while endpoint.items:
                pending = endpoint.items[0]
                hook = self.hooks.get(pending.hook_id)
                if hook is not None:
                    return pending, hook
                endpoint.items.popleft()
            return None

    def record(
        self,
        endpoint: Endpoint,
        pending: Pending,
        attempt: Attempt,
        *,
        base: float,
        cap: float,
        discard_after: float,
    ) -> None:
        """Books an attempt: pops the event on success, pauses the endpoint on failure."""
        with self.lock:
            if attempt.ok:
                outcome = "ok"
                # By identity: an injection may have reordered the queue during the POST.
                endpoint.items = deque(p for p in endpoint.items if p is not pending)
                endpoint.failures = 0
                endpoint.failing_since = None
                endpoint.next_attempt_at = 0.0
            else:
                endpoint.failures += 1
                outcome = "failed" if endpoint.failures == 1 else "retried"
                if endpoint.failing_since is None:
                    endpoint.failing_since = attempt.started_at
                backoff = min(base * 2 ** (endpoint.failures - 1), cap)
                flush_at = endpoint.failing_since + discard_after
                endpoint.next_attempt_at = min(attempt.completed_at + backoff, flush_at)
            self._book(pending, attempt, outcome)

    def discard_expired(self, now: float, discard_after: float) -> int:
        """Flushes endpoints failing for discard_after seconds; their events become discarded."""
        flushed = 0
        with self.lock:
            for endpoint in self.endpoints.values():
                since = endpoint.failing_since
                if since is None or now - since < discard_after:
                    continue
                while endpoint.items:
                    pending = endpoint.items.popleft()
                    self._book(pending, Attempt(False, None, {}, None, None, now, now), "discarded")
                    flushed += 1
                # A fresh start: the next event is tried at once, beginning a new cycle.
                endpoint.failures = 0
                endpoint.failing_since = None
                endpoint.next_attempt_at = 0.0
        return flushed

    def _book(self, pending: Pending, attempt: Attempt, outcome: str) -> None:
        self.deliveries.append(
            {
                "id": next(self._delivery_ids),
                "hook_id": pending.hook_id,
                "event_id": pending.event["id"],
                "event": pending.event,
                "outcome": outcome,
                "response_status": attempt.status,
                "response_headers": attempt.headers,
                "response_body": attempt.body,
                "response_error": attempt.error,
                "started_at": stamp(attempt.started_at),
                "completed_at": stamp(attempt.completed_at),
            }
        )

    def list_deliveries(
        self, scope: Scope, hook_id: int, status: str, page_size: int, page_start: int | None
    ) -> list[dict[str, Any]]:
        """A hook's deliveries, oldest first, after page_start (the previous page's last id)."""
        outcomes = {
            "any": None,
            "successful": ("ok",),
            "failing": ("failed", "retried"),
            "discarded": ("discarded",),
        }
        if status not in outcomes:
            raise WebhookError(
                400, {"errors": "filter[status] must be any, successful, failing or discarded"}
            )
        wanted = outcomes[status]
        with self.lock:
            self.hook(scope, hook_id)
            chosen = [
                d
                for d in self.deliveries
                if d["hook_id"] == hook_id
                and (wanted is None or d["outcome"] in wanted)
                and (page_start is None or d["id"] > page_start)
            ]
            return [dict(d) for d in chosen[:page_size]]

    # ---- test knobs ---------------------------------------------------------------------------
    def pending(self, now: float) -> list[dict[str, Any]]:
        """Every endpoint's queue, for the control API."""
        with self.lock:
            return [e.to_json(now) for e in self.endpoints.values() if e.items or e.failures]

    def release_pauses(self) -> None:
        """Makes every paused endpoint due now (a forced retry pass)."""
        with self.lock:
            for endpoint in self.endpoints.values():
                endpoint.next_attempt_at = 0.0
        self._notify()

    def hold(self, held: bool) -> None:
        """Holds every delivery (events keep queueing) or releases them."""
        with self.lock:
            self.held = held
        self._notify()

    def inject(self, mode: str, hook_id: int | None, now: float) -> int:
        """duplicate: each pending event queued twice (or the last delivered one again);
        out_of_order: the pending events reversed. Returns how many events it touched."""
        if mode not in ("duplicate", "out_of_order"):
            raise WebhookError(400, {"error": "mode must be duplicate or out_of_order"})
        touched = 0
        with self.lock:
            for endpoint in self.endpoints.values():
                mine = [p for p in endpoint.items if hook_id is None or p.hook_id == hook_id]
                others = [
                    p for p in endpoint.items if not (hook_id is None or p.hook_id == hook_id)
                ]
                if mode == "out_of_order":
                    mine.reverse()
                else:
                    mine = [copy for p in mine for copy in (p, Pending(p.hook_id, p.event, now))]
                touched += len(mine)
                endpoint.items = deque(others + mine)
            if mode == "duplicate" and touched == 0:
                touched = self._redeliver_last(hook_id, now)
        self._notify()
        return touched

    def _redeliver_last(self, hook_id: int | None, now: float) -> int:
        delivered = [
            d
            for d in self.deliveries
            if d["outcome"] == "ok" and (hook_id is None or d["hook_id"] == hook_id)
        ]
        if not delivered:
            return 0
        last = delivered[-1]
        hook = self.hooks.get(last["hook_id"])
        if hook is None:
            return 0
        self._queue(hook, dict(last["event"]), now)
        return 1
