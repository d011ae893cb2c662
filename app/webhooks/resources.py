"""Which Webhooks API resource carries the changes of which stream.

Procore documents "RFIs", "Company Users" and "Company Vendors" (procore-api.md section 8:
`plan_your_app/webhooks.md` and the 2026-06-30 deprecation note); the others follow the API's
nouns and are inferred (docs/decisions/0009-simulator-fidelity.md). So a name is used only
when `GET /rest/v1.0/webhooks/resources` lists it in that company: a stream whose resource is
not listed stays polled on the installation's schedule, with a note saying so.
"""

from __future__ import annotations

EVENT_TYPES = ("create", "update", "delete")

STREAM_RESOURCES: dict[str, str] = {
    "projects": "Projects",
    "users": "Company Users",
    "vendors": "Company Vendors",
    "rfis": "RFIs",
    "submittals": "Submittals",
    "observations": "Observation Items",
    "punch_items": "Punch Items",
    "change_events": "Change Events",
    "work_order_contracts": "Work Order Contracts",
    "purchase_order_contracts": "Purchase Order Contracts",
    "prime_contracts": "Prime Contracts",
    "budget_views": "Budget Views",
    "budget_detail_rows": "Budget Line Items",
    "cost_codes": "Cost Codes",
    "documents": "Documents",
    "checklists": "Checklist Lists",
    "timesheets": "Timesheets",
    "daily_manpower_logs": "Manpower Logs",
}
RESOURCE_STREAMS: dict[str, str] = {name: stream for stream, name in STREAM_RESOURCES.items()}


def stream_of(resource_name: str) -> str | None:
    """The stream a delivered resource name belongs to (None: not one the connector syncs)."""
    return RESOURCE_STREAMS.get(resource_name)
