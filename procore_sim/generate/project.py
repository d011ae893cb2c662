"""Generators for project-level coordination records: RFIs, submittals, observations, punch."""

from __future__ import annotations

from datetime import datetime, timedelta

from procore_sim.generate.common import LOCATIONS, TRADES, GenContext, Record

RFI_SUBJECTS = (
    "Clarify slab edge detail at grid", "Confirm anchor bolt layout at",
    "Door hardware conflict at",
    "Ceiling height conflict with duct at", "Missing dimension on stair", "Waterproofing lap at",
    "Curtain wall embed spacing at", "Fire damper access at",
)


def _location(ctx: GenContext) -> dict[str, object]:
    index = ctx.rng.randrange(len(LOCATIONS))
    return {"id": 5000 + index, "name": LOCATIONS[index], "node_name": LOCATIONS[index]}


def rfis(ctx: GenContext) -> list[Record]:
    """RFIs of one project (fields of /rest/v1.0/projects/{pid}/rfis)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=300)
        status = ctx.rng.choice(("open", "open", "closed", "draft"))
        manager = ctx.person()
        assignees = [ctx.person() for _ in range(ctx.rng.randint(1, 3))]
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        number = i + 1
        out.append({
            "id": ctx.next_id(),
            "number": str(number),
            "full_number": f"RFI-{number}",
            "prefix": "RFI",
            "subject": f"{ctx.rng.choice(RFI_SUBJECTS)} {ctx.rng.choice('ABCDEFG')}-"
                       f"{ctx.rng.randint(1, 12)}",
            "status": status,
            "questions": [{
                "id": ctx.next_id(),
                "plain_text_body": "Please advise on the intended detail.",
                "created_by": manager,
                "created_at": created_at,
            }],
            "assignees": assignees,
            "ball_in_court": [] if status == "closed" else [assignees[0]],
            "rfi_manager": manager,
            "received_from": ctx.person(),
            "responsible_contractor": ctx.vendor(),
            "cost_code": None,
            "cost_impact": {"status": ctx.rng.choice(("yes", "no", "tbd")), "value": None},
            "schedule_impact": {"status": ctx.rng.choice(("yes", "no", "tbd")), "value": None},
            "due_date": (created + timedelta(days=ctx.rng.randint(3, 21))).date().isoformat(),
            "initiated_at": created_at,
            "time_resolved": updated_at if status == "closed" else None,
            "location": _location(ctx),
            "private": ctx.rng.random() < 0.1,
            "custom_fields": {},
            "project_id": ctx.project_ref()["id"],
            "created_by": manager,
            "created_at": created_at,
            "updated_at": updated_at,
            "deleted": False,
            "deleted_at": None,
        })
    return out


def _trade(ctx: GenContext) -> Record:
    index = ctx.rng.randrange(len(TRADES))
    return {"id": 900 + index, "name": TRADES[index]}


def _assignment(ctx: GenContext) -> Record:
    who = ctx.person()
    return {"id": ctx.rng.randint(10**6, 10**7), "login_information": who,
            "status": ctx.rng.choice(("unresolved", "ready_for_review", "resolved"))}


def submittals(ctx: GenContext) -> list[Record]:
    """Submittals of one project (fields of /rest/v1.1/projects/{pid}/submittals)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=300)
        section = ctx.rng.randint(1, 33)
        out.append({
            "id": ctx.next_id(),
            "number": str(i + 1),
            "formatted_number": f"{section:02d} 00 00-{i + 1}",
            "revision": ctx.rng.choice((0, 0, 1, 2)),
            "title": f"{ctx.rng.choice(TRADES)} shop drawings",
            "description": "Shop drawings and product data.",
            "status": ctx.rng.choice(({"id": 1, "name": "Open"}, {"id": 2, "name": "Closed"},
                                      {"id": 3, "name": "Draft"})),
            "type": ctx.rng.choice(({"id": 1, "name": "Shop Drawing"},
                                    {"id": 2, "name": "Product Data"},
                                    {"id": 3, "name": "Sample"})),
            "specification_section": {"id": 7000 + section, "number": f"{section:02d} 00 00",
                                      "description": ctx.rng.choice(TRADES)},
            "due_date": ctx.day(spread_days=60),
            "received_date": ctx.day(spread_days=90),
            "issue_date": ctx.day(spread_days=90),
            "approvers": [ctx.person()],
            "ball_in_court": [ctx.person()],
            "responsible_contractor": ctx.vendor(),
            "submittal_manager": ctx.person(),
            "location": _location(ctx),
            "private": False,
            "project": ctx.project_ref(),
            "created_by": ctx.person(),
            "created_at": created_at,
            "updated_at": updated_at,
            "deleted_at": None,
        })
    return out


def observations(ctx: GenContext) -> list[Record]:
    """Observation items of one project (fields of /rest/v1.0/observations/items)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=200)
        status = ctx.rng.choice(("initiated", "ready_for_review", "not_accepted", "closed"))
        out.append({
            "id": ctx.next_id(),
            "number": str(i + 1),
            "name": f"{ctx.rng.choice(('Missing', 'Damaged', 'Unsafe', 'Incomplete'))} "
                    f"{ctx.rng.choice(TRADES).lower()} work",
            "description": "Observed during site walk.",
            "status": status,
            "priority": ctx.rng.choice(("Low", "Medium", "High", "Urgent")),
            "type": ctx.rng.choice(({"id": 1, "name": "Safety", "category": "safety"},
                                    {"id": 2, "name": "Quality", "category": "quality"},
                                    {"id": 3, "name": "Commissioning", "category": "quality"})),
            "trade": _trade(ctx),
            "assignee": ctx.person(),
            "location": _location(ctx),
            "due_date": ctx.day(spread_days=30),
            "personal": False,
            "closed_at": updated_at if status == "closed" else None,
            "project_id": ctx.project_ref()["id"],
            "created_by": ctx.person(),
            "created_at": created_at,
            "updated_at": updated_at,
            "deleted_at": None,
        })
    return out


def punch_items(ctx: GenContext) -> list[Record]:
    """Punch items of one project (fields of /rest/v1.1/punch_items)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=200)
        status = ctx.rng.choice(("open", "open", "closed"))
        manager = ctx.person()
        out.append({
            "id": ctx.next_id(),
            "position": i + 1,
            "name": f"{ctx.rng.choice(('Touch up', 'Replace', 'Clean', 'Adjust'))} "
                    f"{ctx.rng.choice(('paint', 'ceiling tile', 'door closer', 'outlet cover'))}",
            "description": None,
            "status": status,
            "workflow_status": "closed" if status == "closed" else "work_required",
            "priority": ctx.rng.choice(("low", "medium", "high")),
            "due_date": ctx.day(spread_days=30),
            "ball_in_court": [] if status == "closed" else [manager],
            "assignments": [_assignment(ctx)],
            "punch_item_manager": manager,
            "final_approver": ctx.person(),
            "location": _location(ctx),
            "trade": _trade(ctx),
            "cost_impact": {"status": "no", "value": None},
            "schedule_impact": {"status": "no", "value": None},
            "private": False,
            "closed_at": updated_at if status == "closed" else None,
            "project_id": ctx.project_ref()["id"],
            "created_by": manager,
            "created_at": created_at,
            "updated_at": updated_at,
            "deleted_at": None,
        })
    return out


__all__ = ["observations", "punch_items", "rfis", "submittals"]
