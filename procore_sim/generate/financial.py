"""Generators for financial records: change events, commitments, prime contracts, budget, codes."""

from __future__ import annotations

from procore_sim.generate.common import TRADES, GenContext, Record

DIVISIONS = (
    ("01", "General Requirements"),
    ("03", "Concrete"),
    ("05", "Metals"),
    ("06", "Wood, Plastics, and Composites"),
    ("07", "Thermal and Moisture Protection"),
    ("08", "Openings"),
    ("09", "Finishes"),
    ("22", "Plumbing"),
    ("23", "HVAC"),
    ("26", "Electrical"),
    ("31", "Earthwork"),
    ("32", "Exterior Improvements"),
)
CATEGORIES = ("Labor", "Material", "Equipment", "Subcontract", "Other")


def change_events(ctx: GenContext) -> list[Record]:
    """Change events of one project (model RestV10ChangeEventsGet200ResponseInner)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=250)
        origin_id, origin_data, _ = ctx.origin()
        status = ctx.rng.choice(("open", "pending", "closed", "void"))
        reason = ctx.rng.choice(
            ("Client Request", "Design Change", "Unforeseen Conditions", "Existing Condition")
        )
        event_id = ctx.next_id()
        cost_code = ctx.cost_code_ref()
        amount = ctx.money(500, 90_000)
        from_rfi = ctx.rng.random() < 0.3
        out.append(
            {
                "id": event_id,
                "number": i + 1,
                "alphanumeric_number": f"{i + 1:03d}",
                "title": ctx.rng.choice(("Owner request", "Unforeseen condition", "Design change"))
                + f": {ctx.rng.choice(TRADES).lower()}",
                "description": "Raised from site conditions.",
                "status": status,
                "event_scope": ctx.rng.choice(("in_scope", "out_of_scope", "tbd")),
                "event_type": ctx.rng.choice(
                    ("Owner Change", "Design Development", "Allowance", "Contingency", "Transfer")
                ),
                "change_reason": reason,
                "change_order_change_reason": {
                    "id": 40 + len(reason) % 7,
                    "company_id": ctx.company["id"],
                    "change_reason": reason,
                    "show_in_select": True,
                },
                "change_event_status": {
                    "id": 30 + ("open", "pending", "closed", "void").index(status),
                    "name": status.capitalize(),
                    "mapped_to_status": status,
                    "show_in_select": True,
                },
                "change_event_origin_id": ctx.rng.randint(10**6, 10**7) if from_rfi else None,
                "change_event_origin_type": "Rfi::Header" if from_rfi else None,
                "rfi": (
                    {
                        "id": ctx.rng.randint(10**6, 10**7),
                        "title": "Clarify slab edge detail",
                        "number": ctx.rng.randint(1, 80),
                        "due_date": ctx.day(spread_days=60),
                        "status": "closed",
                    }
                    if from_rfi
                    else None
                ),
                "change_event_line_items": [
                    {
                        "id": ctx.rng.randint(10**7, 10**8),
                        "description": f"{cost_code['name']} change",
                        "cost_code": cost_code,
                        "cost_code_id": cost_code["id"],
                        "line_item_type_id": 1,
                        "event_id": event_id,
                        "estimated_cost_amount": amount,
                        "rom": int(float(amount)),
                        "uom": "ls",
                        "vendor": ctx.vendor(),
                        "editable": True,
                        "deletable": True,
                    }
                ],
                "attachments": ctx.attachments("change-event"),
                "rfqs": [],
                "currency_configuration": ctx.currency(),
                "origin_id": origin_id,
                "origin_data": origin_data,
                "project_id": ctx.project_ref()["id"],
                "created_by": ctx.person(),
                "created_at": created_at,
                "updated_at": updated_at,
                "deleted_at": None,
            }
        )
    return out


# Which fields the compact commitment view keeps: Procore publishes one list model (all the
# fields, served with view=extended) and says only that compact is the default; its v2.0
# commitments page adds that the extended view includes the vendor name and custom fields.
# Our inference: compact keeps identity, status and timestamps; money, dates, text and the
# vendor's name are extended-only (docs/decisions/0009-simulator-fidelity.md).
COMPACT_COMMITMENT_FIELDS = (
    "id",
    "number",
    "title",
    "status",
    "executed",
    "private",
    "origin_id",
    "origin_code",
    "project",
    "vendor",
    "created_at",
    "updated_at",
    "deleted_at",
)


def compact_commitment(record: Record) -> Record:
    """The compact view of a commitment: the kept fields, the vendor as {id} only."""
    compact = {key: record[key] for key in COMPACT_COMMITMENT_FIELDS if key in record}
    vendor = compact.get("vendor")
    if isinstance(vendor, dict):
        compact["vendor"] = {"id": vendor.get("id")}
    return compact


def _commitments(ctx: GenContext, prefix: str, title: str, purchase: bool) -> list[Record]:
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=300)
        grand_total = ctx.rng.randint(20_000, 4_000_000)
        approved = ctx.rng.randint(0, grand_total // 10)
        pending = ctx.rng.randint(0, grand_total // 20)
        draft = ctx.rng.randint(0, grand_total // 30)
        paid = ctx.rng.randint(0, grand_total)
        requisitions = ctx.rng.randint(paid, max(paid, grand_total))
        vendor = ctx.vendor()
        origin_id, origin_data, origin_code = ctx.origin()
        status = ctx.rng.choice(
            ("Draft", "Out For Signature", "Approved", "Complete", "Terminated")
        )
        executed = status in ("Approved", "Complete") or ctx.rng.random() < 0.1
        start = ctx.day(spread_days=200)
        revised = grand_total + approved
        record: Record = {
            "id": ctx.next_id(),
            "number": f"{prefix}-{i + 1:03d}",
            "title": f"{ctx.rng.choice(TRADES)} {title}",
            "status": status,
            "executed": executed,
            "private": ctx.rng.random() < 0.2,
            "accounting_method": ctx.rng.choice(("amount", "amount", "unit")),
            "description": f"Furnish and install {ctx.rng.choice(TRADES).lower()} scope.",
            "inclusions": "Labor, material, equipment.",
            "exclusions": ctx.rng.choice(("Permits.", "Bonds.", "Winter conditions.")),
            "grand_total": f"{grand_total}.00",
            "approved_change_orders": f"{approved}.00",
            "pending_change_orders": f"{pending}.00",
            "draft_change_orders_amount": f"{draft}.00",
            "revised_contract": f"{revised}.00",
            "pending_revised_contract": f"{revised + pending}.00",
            "total_payments": f"{paid}.00",
            "total_requisitions_amount": f"{requisitions}.00",
            "total_draw_requests_amount": f"{requisitions}.00",
            "remaining_balance_outstanding": f"{max(revised - paid, 0)}.00",
            "percentage_paid": f"{100 * paid / max(revised, 1):.1f}",
            "retainage_percent": ctx.rng.choice(("0.0", "5.0", "10.0")),
            "requisitions_are_enabled": ctx.rng.random() < 0.7,
            "show_line_items_to_non_admins": ctx.rng.random() < 0.5,
            "contract_date": start,
            "execution_date": ctx.day_between(start, 30) if executed else None,
            "letter_of_intent_date": ctx.day_between(start, 10),
            "approval_letter_date": ctx.day_between(start, 20),
            "signed_contract_received_date": ctx.day_between(start, 25),
            "issued_on_date": ctx.day_between(start, 5),
            "returned_date": ctx.day_between(start, 35),
            "vendor": {"id": vendor["id"], "company": vendor["name"]},
            "currency_configuration": ctx.currency(),
            "origin_id": origin_id,
            "origin_data": origin_data,
            "origin_code": origin_code,
            "project": ctx.project_ref(),
            "created_at": created_at,
            "updated_at": updated_at,
            "deleted_at": None,
        }
        if purchase:
            record.update(
                {
                    "assignee": {"id": ctx.person()["id"]},
                    "bill_to_address": f"{ctx.company['name']}, Accounts Payable",
                    "ship_to_address": f"{ctx.project_ref()['name']} jobsite",
                    "ship_via": ctx.rng.choice(("Ground", "Freight", "Will call")),
                    "payment_terms": ctx.rng.choice(("Net 30", "Net 45", "Net 60")),
                    "delivery_date": ctx.day_between(start, 120),
                    "billing_schedule_of_values_status": ctx.rng.choice(("draft", "approved")),
                }
            )
        else:
            record.update(
                {
                    "contract_start_date": start,
                    "contract_estimated_completion_date": ctx.day_between(start, 300),
                    "actual_completion_date": ctx.maybe(ctx.day_between(start, 330), 0.4),
                }
            )
        out.append(record)
    return out


def work_order_contracts(ctx: GenContext) -> list[Record]:
    """Subcontracts of one project (model RestV10WorkOrderContractsGet200ResponseInner)."""
    return _commitments(ctx, "SC", "Subcontract", purchase=False)


def purchase_order_contracts(ctx: GenContext) -> list[Record]:
    """Purchase orders of one project (model RestV10PurchaseOrderContractsGet200ResponseInner)."""
    return _commitments(ctx, "PO", "Purchase Order", purchase=True)


def _contract_party(ctx: GenContext) -> Record:
    vendor = ctx.vendor()
    return {
        "id": vendor["id"],
        "name": vendor["name"],
        "company": vendor["name"],
        "abbreviated_name": vendor["name"][:10],
        "is_active": True,
    }


def prime_contracts(ctx: GenContext) -> list[Record]:
    """Prime contracts of one project (model RestV10PrimeContractsGet200ResponseInner)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=400)
        total = ctx.rng.randint(1_000_000, 80_000_000)
        approved = ctx.rng.randint(0, total // 15)
        origin_id, origin_data, origin_code = ctx.origin()
        status = ctx.rng.choice(("Draft", "Approved", "Out For Signature", "Complete"))
        executed = status in ("Approved", "Complete")
        start = ctx.day(spread_days=300)
        out.append(
            {
                "id": ctx.next_id(),
                "number": str(i + 1),
                "title": f"Prime Contract {i + 1}",
                "status": status,
                "executed": executed,
                "private": False,
                "accounting_method": "amount",
                "description": "Owner-contractor agreement, stipulated sum.",
                "inclusions": "General conditions and fee.",
                "exclusions": "Hazardous materials abatement.",
                "grand_total": f"{total}.00",
                "approved_change_orders": f"{approved}.00",
                "revised_contract_amount": f"{total + approved}.00",
                "owner_invoices_amount": f"{ctx.rng.randint(0, total)}.00",
                "retainage_percent": "5.0",
                "show_line_items_to_non_admins": False,
                "contract_date": start,
                "contract_start_date": start,
                "contract_estimated_completion_date": ctx.day_between(start, 500),
                "actual_completion_date": ctx.maybe(ctx.day_between(start, 520), 0.3),
                "contract_termination_date": None if status != "Complete" else start,
                "execution_date": ctx.day_between(start, 15) if executed else None,
                "letter_of_intent_date": ctx.day_between(start, 5),
                "approval_letter_date": ctx.day_between(start, 10),
                "signed_contract_received_date": ctx.day_between(start, 20),
                "issued_on_date": ctx.day_between(start, 3),
                "returned_date": ctx.day_between(start, 25),
                "start_date": start,
                "estimated_completion_date": ctx.day_between(start, 500),
                "vendor": _contract_party(ctx),
                "contractor": {
                    "id": ctx.company["id"],
                    "name": ctx.company["name"],
                    "company": ctx.company["name"],
                    "abbreviated_name": ctx.company["name"][:10],
                    "is_active": True,
                },
                "architect": ctx.person(),
                "created_by": ctx.person(),
                "attachments": ctx.attachments("prime-contract"),
                "currency_configuration": ctx.currency(),
                "origin_id": origin_id,
                "origin_data": origin_data,
                "origin_code": origin_code,
                "project": ctx.project_ref(),
                "created_at": created_at,
                "updated_at": updated_at,
                "deleted_at": None,
            }
        )
    return out


BUDGET_VIEW_NAMES = ("Procore Standard Budget", "Forecast View", "Owner Budget", "Cost to Complete")


def budget_views(ctx: GenContext) -> list[Record]:
    """Budget views of one project (model RestV10BudgetViewsGet200ResponseInner)."""
    out: list[Record] = []
    for i in range(min(ctx.count, len(BUDGET_VIEW_NAMES))):
        created_at, updated_at = ctx.stamps(max_age_days=600)
        view_id = ctx.next_id()
        name = BUDGET_VIEW_NAMES[i]
        project_id = ctx.project_ref()["id"]
        base = f"/rest/v1.0/budget_views/{view_id}"
        out.append(
            {
                "id": view_id,
                "name": name,
                "description": f"{name} for {ctx.project_ref()['name']}",
                "role": "owner" if name == "Owner Budget" else "standard",
                "created_by": ctx.person(),
                "links": {
                    "detail_rows": f"{base}/detail_rows?project_id={project_id}",
                    "summary_rows": f"{base}/summary_rows?project_id={project_id}",
                },
                "project_id": project_id,
                "created_at": created_at,
                "updated_at": updated_at,
            }
        )
    return out


def budget_detail_rows(ctx: GenContext) -> list[Record]:
    """Budget line items of one project, each with every amount any budget view shows.

    How they are served depends on SimulatorConfig.budget_rows_repeat_ids (procore_sim.budget):
    one row per line item in every view (same id), or, legacy, each line item in one view.
    """
    out: list[Record] = []
    if not ctx.parents:
        return out
    for i in range(ctx.count):
        view = ctx.parents[i % len(ctx.parents)]
        division, division_name = ctx.rng.choice(DIVISIONS)
        original = ctx.rng.randint(5_000, 900_000)
        changes = ctx.rng.randint(-original // 10, original // 5)
        modifications = ctx.rng.randint(-original // 20, original // 20)
        committed = ctx.rng.randint(0, original)
        direct = ctx.rng.randint(0, original // 4)
        category_index = ctx.rng.randrange(len(CATEGORIES))
        code = f"{division}-{ctx.rng.randint(100, 999)}"
        revised = original + modifications + changes
        projected = max(revised, committed + direct)
        line_item_id = ctx.next_id()
        out.append(
            {
                "id": line_item_id,
                # The one view this line item belongs to in the legacy layout only.
                "budget_view_id": view["id"],
                "deletable": committed == 0,
                "company_id": ctx.company["id"],
                "company": ctx.company["name"],
                "project_id": ctx.project_ref()["id"],
                "project": ctx.project_ref()["name"],
                "wbs_code_id": 7_100_000 + i,
                "biller_id": ctx.project_ref()["id"],
                "biller": ctx.project_ref()["name"],
                "biller_type": "Project",
                "root_cost_code_id": 7_200_000 + int(division),
                "root_cost_code": f"{division} - {division_name}",
                "cost_code_id": 7_300_000 + i,
                "cost_code": f"{code} - {division_name}",
                "cost_code_origin_id": ctx.maybe(f"ERP-CC-{code}", 0.3),
                "category_id": 1 + category_index,
                "category": CATEGORIES[category_index],
                "original_budget_amount": float(original),
                "budget_modifications": float(modifications),
                "budget_forecast": {
                    "id": ctx.rng.randint(10**7, 10**8),
                    "manual_amount": float(projected),
                    "automatic_amount": float(projected),
                    "amount": float(projected),
                    "automatically_calculated": True,
                    "calculation_strategy": "automatic",
                    "notes": ctx.maybe("Awaiting final buyout.", 0.3),
                },
                "currency_configuration": ctx.currency(),
                "unbudgeted_reason": None,
                "approved_cos": float(changes),
                "revised_budget": float(revised),
                "pending_budget_changes": float(ctx.rng.randint(0, original // 20)),
                "projected_budget": float(revised),
                "committed_costs": float(committed),
                "direct_costs": float(direct),
                "job_to_date_costs": float(ctx.rng.randint(0, committed or 1)),
                "pending_cost_changes": float(ctx.rng.randint(0, original // 25)),
                "projected_costs": float(projected),
                "forecast_to_complete": float(max(projected - committed - direct, 0)),
                "estimated_cost_at_completion": float(projected),
                "projected_over_under": float(revised - projected),
            }
        )
    return out


def cost_codes(ctx: GenContext) -> list[Record]:
    """Cost codes of one project (model RestV10ProjectsProjectIdTimesheetsScopedCostCodes...)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=500)
        division, division_name = DIVISIONS[i % len(DIVISIONS)]
        code = f"{100 + i:03d}"
        origin_id, origin_data, _ = ctx.origin()
        out.append(
            {
                "id": ctx.next_id(),
                "name": f"{division_name} {i + 1}",
                "code": code,
                "full_code": f"{division}-{code}",
                "sortable_code": f"{division}-{code}",
                "biller": ctx.project_ref()["name"],
                "biller_id": ctx.project_ref()["id"],
                "biller_type": "Project",
                "biller_origin_id": ctx.maybe(f"ERP-P-{ctx.project_ref()['id'] % 10_000}", 0.3),
                "budgeted": ctx.rng.random() > 0.3,
                "position": i + 1,
                "parent": {"id": 7_200_000 + int(division)},
                "standard_cost_code_id": 7_400_000 + i,
                "line_item_types": [
                    {
                        "id": 1 + j,
                        "name": c,
                        "code": c[0],
                        "base_type": c.lower(),
                        "origin_data": None,
                        "origin_id": None,
                    }
                    for j, c in enumerate(CATEGORIES[:3])
                ],
                "origin_id": origin_id,
                "origin_data": origin_data,
                "project_id": ctx.project_ref()["id"],
                "created_at": created_at,
                "updated_at": updated_at,
                "deleted_at": None,
            }
        )
    return out
