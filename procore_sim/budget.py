"""Budget detail rows as Procore serves them: one row per budget line item in every view.

Procore's detail-row model (RestV10BudgetViewSnapshotsBudgetViewSnapshotIdDetailRowsGet200Response
Inner) has no view id; its `id` is the budget line item's (`deletable` "indicates if the
underlying Budget Line Item can be deleted"), and the endpoint adds "an additional key for each
visible source and formula column created for the particular budget view" (procore-api.md
section 11). So the same id repeats in every view of a project, each view with its own columns.
The store keeps the line items; this module renders a view's rows from them.
"""

from __future__ import annotations

import json
from typing import Any

from procore_sim.store import Partition

Record = dict[str, Any]

# The model's fields: every view's row has them.
ROW_FIELDS = (
    "id",
    "deletable",
    "company_id",
    "company",
    "project_id",
    "wbs_code_id",
    "biller_id",
    "root_cost_code_id",
    "cost_code_id",
    "cost_code_origin_id",
    "category_id",
    "project",
    "biller",
    "biller_type",
    "root_cost_code",
    "cost_code",
    "category",
    "budget_modifications",
    "original_budget_amount",
    "budget_forecast",
    "currency_configuration",
    "unbudgeted_reason",
)
# Each generated view's own source and formula columns, by view name.
VIEW_COLUMNS: dict[str, tuple[str, ...]] = {
    "Procore Standard Budget": (
        "approved_cos",
        "revised_budget",
        "pending_budget_changes",
        "projected_budget",
        "committed_costs",
        "direct_costs",
        "job_to_date_costs",
        "pending_cost_changes",
        "projected_costs",
        "forecast_to_complete",
        "estimated_cost_at_completion",
        "projected_over_under",
    ),
    "Forecast View": (
        "revised_budget",
        "projected_costs",
        "forecast_to_complete",
        "estimated_cost_at_completion",
        "projected_over_under",
    ),
    "Owner Budget": ("approved_cos", "revised_budget", "pending_budget_changes"),
    "Cost to Complete": (
        "committed_costs",
        "direct_costs",
        "job_to_date_costs",
        "forecast_to_complete",
    ),
}
UNBUDGETED_REASON = "Unbudgeted: costs exist for a cost code and category with no budget line item"


def view_columns(view: Record) -> tuple[str, ...]:
    """The extra columns of a budget view (the standard view's for a view of another name)."""
    return VIEW_COLUMNS.get(str(view.get("name")), VIEW_COLUMNS["Procore Standard Budget"])


def _monthly_keys(view: Record, anchor_month: str) -> list[str]:
    if view.get("name") != "Forecast View":
        return []
    year, month = (int(part) for part in anchor_month.split("-"))
    keys = []
    for offset in range(3):
        total = year * 12 + month - 1 + offset
        keys.append(f"forecast_{total // 12:04d}_{total % 12 + 1:02d}")
    return keys


def render_row(item: Record, view: Record, anchor_month: str) -> Record:
    """One line item's row in one view: the model's fields plus the view's columns."""
    row = {key: item.get(key) for key in ROW_FIELDS}
    for column in view_columns(view):
        row[column] = item.get(column)
    monthly = _monthly_keys(view, anchor_month)
    remaining = float(item.get("forecast_to_complete") or 0.0)
    for key in monthly:
        row[key] = round(remaining / len(monthly), 2)
    return row


def unbudgeted_row(items: list[Record], view: Record, anchor_month: str) -> Record | None:
    """The row Procore shows for costs without a budget line item: its id is null."""
    if not items:
        return None
    model = items[0]
    row = render_row(
        {
            **model,
            "id": None,
            "deletable": False,
            "wbs_code_id": None,
            "cost_code_id": None,
            "cost_code": "99-999 - Unbudgeted",
            "cost_code_origin_id": None,
            "original_budget_amount": 0.0,
            "budget_modifications": 0.0,
            "budget_forecast": None,
            "unbudgeted_reason": UNBUDGETED_REASON,
            "approved_cos": 0.0,
            "revised_budget": 0.0,
            "pending_budget_changes": 0.0,
            "projected_budget": 0.0,
            "committed_costs": 1250.0,
            "direct_costs": 0.0,
            "job_to_date_costs": 1250.0,
            "pending_cost_changes": 0.0,
            "projected_costs": 1250.0,
            "forecast_to_complete": 0.0,
            "estimated_cost_at_completion": 1250.0,
            "projected_over_under": -1250.0,
        },
        view,
        anchor_month,
    )
    return row


def view_rows(part: Partition, view: Record, anchor_month: str) -> list[bytes]:
    """The serialized rows of one view: every live line item, then the unbudgeted row."""
    key = f"rows:{view.get('id')}:{view.get('name')}"
    cached = part.extra_cache.get(key)
    if cached is not None and cached[0] == part.version:
        return cached[1]
    items = [s.data for s in part.view("active")]
    rows = [render_row(item, view, anchor_month) for item in items]
    extra = unbudgeted_row(items, view, anchor_month)
    if extra is not None:
        rows.append(extra)
    raw = [json.dumps(row, separators=(",", ":")).encode() for row in rows]
    part.extra_cache[key] = (part.version, raw)
    return raw
