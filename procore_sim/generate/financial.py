"""Generators for financial records: change events, commitments, prime contracts, budget, codes."""

from __future__ import annotations

from procore_sim.generate.common import TRADES, GenContext, Record

DIVISIONS = (
    ("01", "General Requirements"), ("03", "Concrete"), ("05", "Metals"),
    ("06", "Wood, Plastics, and Composites"), ("07", "Thermal and Moisture Protection"),
    ("08", "Openings"), ("09", "Finishes"), ("22", "Plumbing"), ("23", "HVAC"),
    ("26", "Electrical"), ("31", "Earthwork"), ("32", "Exterior Improvements"),
)
CATEGORIES = ("Labor", "Material", "Equipment", "Subcontract", "Other")


def change_events(ctx: GenContext) -> list[Record]:
    """Change events of one project (fields of /rest/v1.0/change_events)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=250)
        out.append({
            "id": ctx.next_id(),
            "number": f"{i + 1:03d}",
            "alphanumeric_number": f"{i + 1:03d}",
            "title": f"{ctx.rng.choice(('Owner request', 'Unforeseen condition', 'Design change'))}"
                     f": {ctx.rng.choice(TRADES).lower()}",
            "description": "Raised from site conditions.",
            "status": ctx.rng.choice(("open", "pending", "closed", "void")),
            "event_scope": ctx.rng.choice(("in_scope", "out_of_scope", "tbd")),
            "event_type": ctx.rng.choice(("Owner Change", "Design Development", "Allowance",
                                          "Contingency", "Transfer")),
            "change_reason": ctx.rng.choice(("Client Request", "Design Change",
                                             "Unforeseen Conditions", "Existing Condition")),
            "origin_id": None,
            "project_id": ctx.project_ref()["id"],
            "created_by": ctx.person(),
            "created_at": created_at,
            "updated_at": updated_at,
            "deleted_at": None,
        })
    return out


def _commitments(ctx: GenContext, prefix: str, title: str) -> list[Record]:
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=300)
        grand_total = ctx.rng.randint(20_000, 4_000_000)
        approved = ctx.rng.randint(0, grand_total // 10)
        pending = ctx.rng.randint(0, grand_total // 20)
        vendor = ctx.vendor()
        out.append({
            "id": ctx.next_id(),
            "number": f"{prefix}-{i + 1:03d}",
            "title": f"{ctx.rng.choice(TRADES)} {title}",
            "status": ctx.rng.choice(("Draft", "Out For Signature", "Approved", "Complete",
                                      "Terminated")),
            "executed": ctx.rng.random() > 0.3,
            "private": ctx.rng.random() < 0.2,
            "description": None,
            "inclusions": None,
            "exclusions": None,
            "grand_total": f"{grand_total}.00",
            "approved_change_orders": f"{approved}.00",
            "pending_change_orders": f"{pending}.00",
            "revised_contract": f"{grand_total + approved}.00",
            "retainage_percent": ctx.rng.choice(("0.0", "5.0", "10.0")),
            "contract_date": ctx.day(spread_days=200),
            "delivery_date": ctx.day(spread_days=200),
            "signed_contract_received_date": ctx.day(spread_days=200),
            "issued_on_date": ctx.day(spread_days=200),
            "vendor": {"id": vendor["id"], "company": vendor["name"]},
            "origin_id": None,
            "project": ctx.project_ref(),
            "created_at": created_at,
            "updated_at": updated_at,
            "deleted_at": None,
        })
    return out


def work_order_contracts(ctx: GenContext) -> list[Record]:
    """Subcontracts of one project (fields of /rest/v1.0/work_order_contracts)."""
    return _commitments(ctx, "SC", "Subcontract")


def purchase_order_contracts(ctx: GenContext) -> list[Record]:
    """Purchase orders of one project (fields of /rest/v1.0/purchase_order_contracts)."""
    return _commitments(ctx, "PO", "Purchase Order")


def prime_contracts(ctx: GenContext) -> list[Record]:
    """Prime contracts of one project (fields of /rest/v1.0/prime_contracts)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=400)
        total = ctx.rng.randint(1_000_000, 80_000_000)
        approved = ctx.rng.randint(0, total // 15)
        out.append({
            "id": ctx.next_id(),
            "number": str(i + 1),
            "title": f"Prime Contract {i + 1}",
            "status": ctx.rng.choice(("Draft", "Approved", "Out For Signature", "Complete")),
            "executed": ctx.rng.random() > 0.2,
            "private": False,
            "description": None,
            "grand_total": f"{total}.00",
            "approved_change_orders": f"{approved}.00",
            "revised_contract_amount": f"{total + approved}.00",
            "owner_invoices_amount": f"{ctx.rng.randint(0, total)}.00",
            "retainage_percent": "5.0",
            "start_date": ctx.day(spread_days=300),
            "estimated_completion_date": ctx.day(spread_days=400),
            "vendor": ctx.vendor(),
            "contractor": {"id": ctx.company["id"], "name": ctx.company["name"]},
            "architect": ctx.vendor(),
            "origin_id": None,
            "project": ctx.project_ref(),
            "created_at": created_at,
            "updated_at": updated_at,
        })
    return out


def budget_views(ctx: GenContext) -> list[Record]:
    """Budget views of one project: no timestamps, as in Procore."""
    names = ("Procore Standard Budget", "Forecast View", "Owner Budget", "Cost to Complete")
    return [{"id": ctx.next_id(), "name": names[i % len(names)],
             "description": f"{names[i % len(names)]} for {ctx.project_ref()['name']}",
             "project_id": ctx.project_ref()["id"]}
            for i in range(min(ctx.count, len(names)))]


def budget_detail_rows(ctx: GenContext) -> list[Record]:
    """Budget detail rows, spread over the project's budget views (no timestamps)."""
    out: list[Record] = []
    if not ctx.parents:
        return out
    for i in range(ctx.count):
        view = ctx.parents[i % len(ctx.parents)]
        division, division_name = ctx.rng.choice(DIVISIONS)
        original = ctx.rng.randint(5_000, 900_000)
        changes = ctx.rng.randint(-original // 10, original // 5)
        committed = ctx.rng.randint(0, original)
        out.append({
            "id": ctx.next_id(),
            "budget_view_id": view["id"],
            "project_id": ctx.project_ref()["id"],
            "cost_code": f"{division}-{ctx.rng.randint(100, 999)}",
            "cost_code_description": division_name,
            "category": ctx.rng.choice(CATEGORIES),
            "original_budget_amount": float(original),
            "budget_modifications": 0.0,
            "approved_cos": float(changes),
            "revised_budget": float(original + changes),
            "pending_budget_changes": 0.0,
            "committed_costs": float(committed),
            "direct_costs": float(ctx.rng.randint(0, original // 4)),
            "job_to_date_costs": float(ctx.rng.randint(0, committed or 1)),
            "projected_costs": float(original + changes),
            "forecast_to_complete": float(max(original + changes - committed, 0)),
            "estimated_cost_at_completion": float(original + changes),
            "projected_over_under": 0.0,
        })
    return out


def cost_codes(ctx: GenContext) -> list[Record]:
    """Cost codes of one project (fields of /rest/v1.0/cost_codes)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=500)
        division, division_name = DIVISIONS[i % len(DIVISIONS)]
        code = f"{100 + i:03d}"
        out.append({
            "id": ctx.next_id(),
            "name": f"{division_name} {i + 1}",
            "code": code,
            "full_code": f"{division}-{code}",
            "sortable_code": f"{division}-{code}",
            "biller": ctx.company["name"],
            "biller_type": "Company",
            "budgeted": ctx.rng.random() > 0.3,
            "position": i + 1,
            "parent": {"id": None, "name": division_name, "code": division},
            "line_item_types": [{"id": 1 + j, "name": c, "code": c[0]}
                                for j, c in enumerate(CATEGORIES[:3])],
            "origin_id": None,
            "origin_data": None,
            "project_id": ctx.project_ref()["id"],
            "created_at": created_at,
            "updated_at": updated_at,
        })
    return out
