"""Webhooks resource names: which stream's changes are delivered under which name.

Procore names resources in its Webhooks configuration page and a downloadable CSV that is not
in the public docs; the names below follow the documented examples ("RFIs", "Company Users",
"Purchase Order Contract Line Items") and the API's nouns. Those not seen in a Procore source
are marked [I] in docs/decisions/0009-simulator-fidelity.md.
"""

from __future__ import annotations

from typing import Any

EVENT_TYPES = ("create", "update", "delete")

# stream -> (resource_name, product_category, tool)
STREAM_RESOURCES: dict[str, tuple[str, str, str]] = {
    "projects": ("Projects", "Core", "Portfolio"),
    "users": ("Company Users", "Core", "Company Directory"),
    "vendors": ("Company Vendors", "Core", "Company Directory"),
    "rfis": ("RFIs", "Project Management", "RFIs"),
    "submittals": ("Submittals", "Project Management", "Submittals"),
    "observations": ("Observation Items", "Quality & Safety", "Observations"),
    "punch_items": ("Punch Items", "Quality & Safety", "Punch List"),
    "change_events": ("Change Events", "Construction Financials", "Change Events"),
    "work_order_contracts": ("Work Order Contracts", "Construction Financials", "Commitments"),
    "purchase_order_contracts": (
        "Purchase Order Contracts",
        "Construction Financials",
        "Commitments",
    ),
    "prime_contracts": ("Prime Contracts", "Construction Financials", "Prime Contracts"),
    "budget_views": ("Budget Views", "Construction Financials", "Budget"),
    "budget_detail_rows": ("Budget Line Items", "Construction Financials", "Budget"),
    "cost_codes": ("Cost Codes", "Core", "Admin"),
    "documents": ("Documents", "Core", "Documents"),
    "checklists": ("Checklist Lists", "Quality & Safety", "Inspections"),
    "timesheets": ("Timesheets", "Field Productivity", "Timesheets"),
    "daily_manpower_logs": ("Manpower Logs", "Project Management", "Daily Log"),
}
# Other resources Procore offers that the simulator lists but never changes.
OTHER_RESOURCES: tuple[tuple[str, str, str], ...] = (
    ("Project Users", "Core", "Directory"),
    ("Project Vendors", "Core", "Directory"),
    ("Change Event Line Items", "Construction Financials", "Change Events"),
    ("Purchase Order Contract Line Items", "Construction Financials", "Commitments"),
    ("Work Order Contract Line Items", "Construction Financials", "Commitments"),
    ("Direct Costs", "Construction Financials", "Direct Costs"),
    ("Direct Cost Line Items", "Construction Financials", "Direct Costs"),
    ("Timecard Entries", "Field Productivity", "Timesheets"),
)
RESOURCE_NAMES: frozenset[str] = frozenset(
    name for name, _, _ in (*STREAM_RESOURCES.values(), *OTHER_RESOURCES)
)


def resource_list() -> list[dict[str, Any]]:
    """GET /rest/v1.0/webhooks/resources: the WebhooksResource model plus its resource_name."""
    out = []
    for name, category, tool in sorted({*STREAM_RESOURCES.values(), *OTHER_RESOURCES}):
        out.append(
            {
                "resource_name": name,
                "api_version": "v2",
                "product_category": category,
                "tools": tool,
                "except": [],
                "create": f"{name} create",
                "update": f"{name} update",
                "delete": f"{name} delete",
            }
        )
    return out
