"""Calls of Procore's Webhooks API for one company (procore-api.md section 8).

Paths and bodies as documented in `plan_your_app/webhooks_api.md`: hooks at
`/rest/v1.0/webhooks/hooks` (company scope: `company_id` in the query or the body), triggers
per hook (bulk create and delete, up to 100 at a time, 207 when some fail), the deliveries
list with `filter[status]`, and `/rest/v1.0/webhooks/resources`. Every call goes through the
Procore client: one token, the company's rate limiter, retries and request accounting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.procore import ProcoreClient, ProcoreCredentials, RequestStats

BASE = "/rest/v1.0/webhooks"
API_VERSION = "v2"  # delivers the v2.0 payload the receiver validates
BULK_LIMIT = 100
DELIVERIES_PAGE = 100


@dataclass
class WebhooksApi:
    """The Webhooks API of one company, with the requests it made counted in `stats`."""

    client: ProcoreClient
    creds: ProcoreCredentials
    company_id: int
    stats: RequestStats

    async def _call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        query = {"company_id": str(self.company_id), **(params or {})}
        return await self.client.send(
            self.creds,
            method,
            BASE + path,
            company_id=self.company_id,
            params=query,
            json=body,
            stats=self.stats,
        )

    async def hooks(self, namespace: str) -> list[dict[str, Any]]:
        """The company-scoped hooks of a namespace."""
        found = await self._call("GET", "/hooks", params={"namespace": namespace})
        return [h for h in found or [] if isinstance(h, dict)]

    async def create_hook(
        self, namespace: str, url: str, headers: dict[str, str]
    ) -> dict[str, Any]:
        """A new company-scoped hook."""
        body = {
            "company_id": self.company_id,
            "hook": {
                "api_version": API_VERSION,
                "namespace": namespace,
                "destination_url": url,
                "destination_headers": headers,
            },
        }
        created: dict[str, Any] = await self._call("POST", "/hooks", body=body)
        return created

    async def update_hook(self, hook_id: int, url: str, headers: dict[str, str]) -> None:
        """Points a hook at our URL with our header."""
        body = {
            "company_id": self.company_id,
            "hook": {"destination_url": url, "destination_headers": headers},
        }
        await self._call("PATCH", f"/hooks/{hook_id}", body=body)

    async def delete_hook(self, hook_id: int) -> None:
        """Deletes a hook with its triggers."""
        await self._call("DELETE", f"/hooks/{hook_id}")

    async def resources(self) -> set[str]:
        """The resource names this company can subscribe to."""
        found = await self._call("GET", "/resources")
        names: set[str] = set()
        for item in found or []:
            if isinstance(item, dict) and isinstance(item.get("resource_name"), str):
                names.add(item["resource_name"])
        return names

    async def triggers(self, hook_id: int) -> list[dict[str, Any]]:
        """The triggers of a hook."""
        found = await self._call("GET", f"/hooks/{hook_id}/triggers")
        return [t for t in found or [] if isinstance(t, dict)]

    async def add_triggers(self, hook_id: int, wanted: list[tuple[str, str]]) -> list[str]:
        """Creates triggers in bulk; returns Procore's message for each one it refused."""
        refused: list[str] = []
        for start in range(0, len(wanted), BULK_LIMIT):
            chunk = wanted[start : start + BULK_LIMIT]
            body = {
                "company_id": self.company_id,
                "api_version": API_VERSION,
                "triggers": [{"resource_name": r, "event_type": e} for r, e in chunk],
            }
            answer = await self._call("POST", f"/hooks/{hook_id}/triggers/bulk", body=body)
            for failure in (answer or {}).get("failed", []) if isinstance(answer, dict) else []:
                if isinstance(failure, dict):
                    refused.append(str(failure.get("message") or failure.get("code"))[:200])
        return refused

    async def remove_triggers(self, hook_id: int, trigger_ids: list[int]) -> None:
        """Deletes triggers in bulk (one already gone is fine)."""
        for start in range(0, len(trigger_ids), BULK_LIMIT):
            body = {
                "company_id": self.company_id,
                "triggers": trigger_ids[start : start + BULK_LIMIT],
            }
            await self._call("DELETE", f"/hooks/{hook_id}/triggers/bulk", body=body)

    async def discarded_after(self, hook_id: int, after: int | None) -> list[dict[str, Any]]:
        """Deliveries Procore discarded (after 12 hours of failures), after delivery `after`."""
        found: list[dict[str, Any]] = []
        cursor = after
        while True:
            params: dict[str, Any] = {
                "filter[status]": "discarded",
                "page_size": str(DELIVERIES_PAGE),
            }
            if cursor is not None:
                params["page_start"] = str(cursor)
            page = await self._call("GET", f"/hooks/{hook_id}/deliveries", params=params)
            items = [d for d in page or [] if isinstance(d, dict) and isinstance(d.get("id"), int)]
            found.extend(items)
            if len(items) < DELIVERIES_PAGE:
                return found
            cursor = max(int(d["id"]) for d in items)
