"""Generators for project-level coordination records: RFIs, submittals, observations, punch."""

from __future__ import annotations

from datetime import datetime, timedelta

from procore_sim.generate.common import TRADES, GenContext, Record

RFI_SUBJECTS = (
    "Clarify slab edge detail at grid",
    "Confirm anchor bolt layout at",
    "Door hardware conflict at",
    "Ceiling height conflict with duct at",
    "Missing dimension on stair",
    "Waterproofing lap at",
    "Curtain wall embed spacing at",
    "Fire damper access at",
)


def _location(ctx: GenContext) -> Record:
    return ctx.location()


def _stage(ctx: GenContext) -> Record:
    stage_id, name = ctx.rng.choice(((1, "Pre-Construction"), (2, "Course of Construction")))
    return {
        "id": stage_id,
        "name": name,
        "formatted_name": name,
        "formatted_parent_name": None,
        "default_stage": stage_id == 2,
        "dependent_projects": ctx.rng.randint(0, 40),
        "parent_id": None,
        "procore_category": True,
    }


def _sub_job(ctx: GenContext) -> Record:
    index = ctx.rng.randint(1, 3)
    return {"id": 8000 + index, "name": f"Phase {index}", "code": f"P{index}"}


def rfis(ctx: GenContext) -> list[Record]:
    """RFIs of one project (model RestV10ProjectsProjectIdRfisGet200ResponseInner)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=300)
        status = ctx.rng.choice(("open", "open", "closed", "draft"))
        manager = ctx.person()
        assignees = [
            {**ctx.person(), "locale": "en", "response_required": ctx.rng.random() < 0.5}
            for _ in range(ctx.rng.randint(1, 3))
        ]
        in_court = (
            [] if status == "closed" else [{k: assignees[0][k] for k in ("id", "name", "login")}]
        )
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        location = _location(ctx)
        rfi_id = ctx.next_id()
        number = i + 1
        cost = ctx.rng.choice(("yes_known", "yes_unknown", "no_impact", "tbd"))
        schedule = ctx.rng.choice(("yes_known", "yes_unknown", "no_impact", "tbd"))
        out.append(
            {
                "id": rfi_id,
                "number": str(number),
                "full_number": f"RFI-{number}",
                "prefix": "RFI",
                "reference": ctx.maybe(f"Sheet A{ctx.rng.randint(100, 599)}", 0.6),
                "link": f"https://app.procore.invalid/projects/{ctx.project_ref()['id']}/rfis/{rfi_id}",
                "subject": f"{ctx.rng.choice(RFI_SUBJECTS)} {ctx.rng.choice('ABCDEFG')}-"
                f"{ctx.rng.randint(1, 12)}",
                "status": status,
                "translated_status": status.capitalize(),
                "questions": [
                    {
                        "id": ctx.next_id(),
                        "body": "Please advise on the intended detail.",
                        "plain_text_body": "Please advise on the intended detail.",
                        "errors": [],
                        "created_by": manager,
                        "created_at": created_at,
                    }
                ],
                "assignee": {k: assignees[0][k] for k in ("id", "name", "login")},
                "assignees": assignees,
                "ball_in_court": in_court[0] if in_court else None,
                "ball_in_courts": in_court,
                "rfi_manager": manager,
                "received_from": ctx.person(),
                "responsible_contractor": ctx.vendor(),
                "cost_code": ctx.cost_code_ref(),
                "sub_job": _sub_job(ctx),
                "project_stage": _stage(ctx),
                "cost_impact": {
                    "status": cost,
                    "value": float(ctx.rng.randint(500, 50_000)) if cost == "yes_known" else None,
                },
                "schedule_impact": {
                    "status": schedule,
                    "value": ctx.rng.randint(1, 30) if schedule == "yes_known" else None,
                },
                "due_date": (created + timedelta(days=ctx.rng.randint(3, 21))).date().isoformat(),
                "initiated_at": created_at,
                "time_resolved": updated_at if status == "closed" else None,
                "location": location,
                "location_id": location["id"],
                "private": ctx.rng.random() < 0.1,
                "custom_fields": ctx.custom_fields(),
                "project_id": ctx.project_ref()["id"],
                "created_by": manager,
                "created_at": created_at,
                "updated_at": updated_at,
                "deleted": False,
                "deleted_at": None,
            }
        )
    return out


def _trade(ctx: GenContext) -> Record:
    return ctx.trade()


def _assignment(ctx: GenContext, updated_at: str) -> Record:
    who = ctx.person()
    status = ctx.rng.choice(("unresolved", "ready_for_review", "resolved"))
    return {
        "id": ctx.rng.randint(10**6, 10**7),
        "approved": status == "resolved",
        "comment": ctx.maybe("Done, please review.", 0.5),
        "login_information_id": who["id"],
        "login_information_name": who["name"],
        "login_information": who,
        "attachments": [],
        "vendor": ctx.vendor(),
        "notified_at": updated_at,
        "responded_at": updated_at if status != "unresolved" else None,
        "status": status,
        "manager_accepted_at": updated_at if status == "resolved" else None,
        "user_name": who["name"],
        "updated_at": updated_at,
    }


def _submittal_person(ctx: GenContext) -> Record:
    who = ctx.person()
    return {"id": who["id"], "name": who["name"]}


def submittals(ctx: GenContext) -> list[Record]:
    """Submittals of one project (model RestV11ProjectsProjectIdSubmittalsGet200ResponseInner)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=300)
        section = ctx.rng.randint(1, 33)
        status_id, status_name = ctx.rng.choice(((1, "Open"), (2, "Closed"), (3, "Draft")))
        location = _location(ctx)
        manager = _submittal_person(ctx)
        approver = _submittal_person(ctx)
        distributed = status_name == "Closed"
        package_id = 6000 + section
        out.append(
            {
                "id": ctx.next_id(),
                "number": str(i + 1),
                "formatted_number": f"{section:02d} 00 00-{i + 1}",
                "revision": str(ctx.rng.choice((0, 0, 1, 2))),
                "current_revision": True,
                "title": f"{ctx.rng.choice(TRADES)} shop drawings",
                "description": "Shop drawings and product data.",
                "status": {"id": status_id, "name": status_name, "status": status_name},
                "type": ctx.rng.choice(
                    (
                        {"id": 1, "name": "Shop Drawing"},
                        {"id": 2, "name": "Product Data"},
                        {"id": 3, "name": "Sample"},
                    )
                ),
                "specification_section": {
                    "id": 7000 + section,
                    "number": f"{section:02d} 00 00",
                    "description": ctx.rng.choice(TRADES),
                    "label": f"{section:02d} 00 00 - {ctx.rng.choice(TRADES)}",
                    "current_revision_id": 7100 + section,
                },
                "submittal_package": {
                    "id": package_id,
                    "title": f"Division {section:02d} package",
                    "number": str(section),
                    "description": None,
                    "specification_section_id": 7000 + section,
                    "submittal_ids": [],
                    "attachments": [],
                    "created_by": manager,
                    "updated_at": created_at,
                },
                "due_date": ctx.day(spread_days=60),
                "received_date": ctx.day(spread_days=90),
                "issue_date": ctx.day(spread_days=90),
                "submit_by": ctx.day(spread_days=60),
                "distributed_at": updated_at if distributed else None,
                "last_distributed_submittal": (
                    {
                        "id": ctx.rng.randint(10**6, 10**7),
                        "distributed_attachments": [],
                        "distributed_responses": [],
                        "distributed_by": manager,
                        "distributed_to": [approver],
                        "message": "Approved as noted.",
                        "sent_at": updated_at,
                    }
                    if distributed
                    else None
                ),
                "approvers": [
                    {
                        "id": ctx.rng.randint(10**6, 10**7),
                        "approver_type": "Approver",
                        "associated_attachments": [],
                        "comment": None,
                        "due_date": ctx.day(spread_days=30),
                        "response_required": True,
                        "response": {"id": 1, "name": "Pending"},
                        "returned_date": None,
                        "sent_date": created_at[:10],
                        "user": approver,
                        "workflow_group_number": 0,
                    }
                ],
                "ball_in_court": [
                    {
                        **approver,
                        "initials": "".join(p[0] for p in approver["name"].split()),
                        "vendor": ctx.vendor(),
                    }
                ],
                "distribution_members": [manager],
                "associated_attachments": [],
                "drawing_ids": [],
                "linked_drawing_ids": [],
                "cost_code_id": ctx.cost_code_ref()["id"],
                "sub_job_id": _sub_job(ctx)["id"],
                "location_id": location["id"],
                "received_from": _submittal_person(ctx),
                "responsible_contractor": ctx.vendor(),
                "submittal_manager": manager,
                "location": location,
                "private": False,
                "custom_fields": ctx.custom_fields(),
                "project": ctx.project_ref(),
                "created_by": manager,
                "created_at": created_at,
                "updated_at": updated_at,
                "deleted_at": None,
            }
        )
    return out


OBSERVATION_TYPES = (
    ("safety", "Safety"),
    ("quality", "Quality"),
    ("commissioning", "Commissioning"),
)


def observations(ctx: GenContext) -> list[Record]:
    """Observation items of one project (model ObservationItem)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=200)
        status = ctx.rng.choice(("initiated", "ready_for_review", "not_accepted", "closed"))
        key, label = ctx.rng.choice(OBSERVATION_TYPES)
        assignee = ctx.person()
        section = ctx.rng.randint(1, 33)
        description = "Observed during site walk."
        out.append(
            {
                "id": ctx.next_id(),
                "number": str(i + 1),
                "name": f"{ctx.rng.choice(('Missing', 'Damaged', 'Unsafe', 'Incomplete'))} "
                f"{ctx.rng.choice(TRADES).lower()} work",
                "description": description,
                "description_rich_text": f"<p>{description}</p>",
                "status": status,
                "priority": ctx.rng.choice(("Low", "Medium", "High", "Urgent")),
                "type": {
                    "id": OBSERVATION_TYPES.index((key, label)) + 1,
                    "name": label,
                    "category": key,
                    "category_key": key,
                    "active": True,
                    "company_active": True,
                    "parent_inactive": False,
                    "in_use": True,
                    "kind": key,
                    "name_translations": {"en": label},
                    "localized_name": label,
                },
                "origin": (
                    {"type": "Checklist", "payload": {"id": ctx.rng.randint(10**6, 10**7)}}
                    if ctx.rng.random() < 0.3
                    else None
                ),
                "trade": _trade(ctx),
                "assignee": {**assignee, "vendor": ctx.vendor()},
                "specification_section": {
                    "id": 7000 + section,
                    "number": f"{section:02d} 00 00",
                    "description": ctx.rng.choice(TRADES),
                    "latest_revision_url": f"https://app.procore.invalid/specs/{7000 + section}",
                },
                "location": _location(ctx),
                "date_notified": created_at[:10],
                "due_date": ctx.day(spread_days=30),
                "personal": False,
                "closed_at": updated_at if status == "closed" else None,
                "custom_fields": ctx.custom_fields(),
                "project_id": ctx.project_ref()["id"],
                "created_by": ctx.person(),
                "created_at": created_at,
                "updated_at": updated_at,
                "deleted_at": None,
            }
        )
    return out


def punch_items(ctx: GenContext) -> list[Record]:
    """Punch items of one project (model PunchItem)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=200)
        status = ctx.rng.choice(("open", "open", "closed"))
        manager = {**ctx.person(), "locale": "en"}
        location = {**_location(ctx), "code": f"L{ctx.rng.randint(1, 9)}"}
        assignment = _assignment(ctx, updated_at)
        cost = ctx.rng.choice(("yes_known", "no_impact", "tbd"))
        schedule = ctx.rng.choice(("yes_known", "no_impact", "tbd"))
        out.append(
            {
                "id": ctx.next_id(),
                "position": i + 1,
                "name": f"{ctx.rng.choice(('Touch up', 'Replace', 'Clean', 'Adjust'))} "
                f"{ctx.rng.choice(('paint', 'ceiling tile', 'door closer', 'outlet cover'))}",
                "description": ctx.rng.choice(("Scuffed at corner.", "Loose fitting.", "Missing.")),
                "reference": ctx.maybe(f"Room {ctx.rng.randint(100, 499)}", 0.6),
                "status": status,
                "workflow_status": "closed" if status == "closed" else "work_required",
                "priority": ctx.rng.choice(("low", "medium", "high")),
                "due_date": ctx.day(spread_days=30),
                "ball_in_court": [] if status == "closed" else [manager],
                "assignments": [assignment],
                "assignees": [assignment["login_information"]],
                "has_resolved_responses": assignment["status"] == "resolved",
                "has_unresolved_responses": assignment["status"] == "unresolved",
                "punch_item_manager": manager,
                "final_approver": {**ctx.person(), "locale": "en"},
                "punch_item_type": ctx.rng.choice(
                    ({"id": 1, "name": "Finish"}, {"id": 2, "name": "Damage"})
                ),
                "location": location,
                "trade": _trade(ctx),
                "cost_code": ctx.cost_code_ref(),
                "cost_impact": cost,
                "cost_impact_amount": ctx.money(100, 5000) if cost == "yes_known" else None,
                "schedule_impact": schedule,
                "schedule_impact_days": ctx.rng.randint(1, 10) if schedule == "yes_known" else None,
                "schedule_risk": ctx.rng.choice(("low", "medium", "high")),
                "schedule_risk_reason": ctx.maybe("Long-lead replacement part.", 0.4),
                "schedule_risk_confidence": ctx.rng.randint(10, 100),
                "schedule_risk_probability": ctx.rng.randint(0, 100),
                "private": False,
                "closed_at": updated_at if status == "closed" else None,
                "custom_fields": ctx.custom_fields(),
                "project_id": ctx.project_ref()["id"],
                "created_by": ctx.person(),
                "created_at": created_at,
                "updated_at": updated_at,
                "deleted_at": None,
            }
        )
    return out


__all__ = ["observations", "punch_items", "rfis", "submittals"]
