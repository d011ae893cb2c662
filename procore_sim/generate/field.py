"""Generators for field records: documents, checklists, timesheets, manpower logs."""

from __future__ import annotations

from datetime import timedelta

from procore_sim.generate.common import TRADES, GenContext, Record, iso

FILE_KINDS = (
    ("pdf", "Drawings"),
    ("pdf", "Specifications"),
    ("xlsx", "Schedules"),
    ("jpg", "Photos"),
    ("docx", "Contracts"),
    ("dwg", "CAD"),
)


def documents(ctx: GenContext) -> list[Record]:
    """Flat document list of one project (model ExampleOfAFolderThatIsAFile)."""
    out: list[Record] = []
    folders: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=400)
        is_folder = not folders or ctx.rng.random() < 0.15
        parent = ctx.rng.choice(folders) if folders and ctx.rng.random() < 0.8 else None
        extension, topic = ctx.rng.choice(FILE_KINDS)
        name = f"{topic} {i + 1}" if is_folder else f"{topic.lower()}-{i + 1:04d}.{extension}"
        path = f"{parent['name_with_path']}/{name}" if parent else name
        private = ctx.rng.random() < 0.05
        record_id = ctx.next_id()
        parent_ref = (
            {"id": parent["id"], "name": parent["name"], "name_with_path": parent["name_with_path"]}
            if parent
            else {"id": None, "name": None, "name_with_path": None}
        )
        record: Record = {
            "id": record_id,
            "name": name,
            "name_with_path": path,
            "document_type": "folder" if is_folder else "file",
            "parent_id": parent["id"] if parent else None,
            "file_type": None if is_folder else extension,
            "private": private,
            "read_only": ctx.rng.random() < 0.1,
            "is_tracked": parent is not None and ctx.rng.random() < 0.2,
            "is_deleted": False,
            "is_recycle_bin": False,
            "is_in_recycle_bin": False,
            "private_parent": parent_ref if private else None,
            "tracked_folder": parent_ref,
            "children": {
                "has_children": is_folder,
                "has_children_files": is_folder,
                "has_children_folders": False,
            },
            "file": (
                None
                if is_folder
                else {
                    "checked_out_by": None,
                    "checked_out_until": None,
                    "current_version": {
                        "id": ctx.rng.randint(10**8, 10**9),
                        "url": f"https://storage.procore.invalid/files/{record_id}/{name}",
                        "size": ctx.rng.randint(10_000, 90_000_000),
                        "created_at": updated_at,
                    },
                    "description": f"{topic} issued for construction",
                    "file_type": extension,
                }
            ),
            "custom_fields": ctx.custom_fields(),
            "created_by": ctx.person(),
            "updated_by": ctx.person(),
            "project_id": ctx.project_ref()["id"],
            "created_at": created_at,
            "updated_at": updated_at,
        }
        if is_folder:
            folders.append(record)
        out.append(record)
    return out


CHECKLIST_STATUSES = ("open", "in_review", "closed")


def checklists(ctx: GenContext) -> list[Record]:
    """Inspections (checklist lists) of one project (model Checklist5)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=200)
        status = ctx.rng.choice(CHECKLIST_STATUSES)
        trade = ctx.trade()
        trade_index = TRADES.index(trade["name"])
        items = ctx.rng.randint(3, 40)
        conforming = ctx.rng.randint(0, items)
        deficient = ctx.rng.randint(0, items - conforming)
        not_applicable = ctx.rng.randint(0, items - conforming - deficient)
        neutral = items - conforming - deficient - not_applicable
        observations = ctx.rng.randint(0, deficient)
        section = ctx.rng.randint(1, 33)
        inspector = ctx.person()
        closed = status == "closed"
        due = ctx.day(spread_days=60)
        template_id = 400 + trade_index
        out.append(
            {
                "id": ctx.next_id(),
                "number": i + 1,
                "name": f"{trade['name']} pre-installation inspection",
                "description": f"Verify {trade['name'].lower()} work before cover-up.",
                "identifier": f"INSP-{i + 1:04d}",
                "status": status,
                "inspection_date": ctx.day(spread_days=60),
                "due_at": f"{due}T17:00:00Z",
                "due_date": due,
                "overdue": not closed and due < ctx.anchor.date().isoformat(),
                "inspection_type": {
                    "id": 300 + trade_index,
                    "name": f"{trade['name']} Inspection",
                    "created_at": created_at,
                    "updated_at": created_at,
                },
                "list_template_id": template_id,
                "list_template_name": f"{trade['name']} Checklist",
                "template_id": template_id,
                "default_response_phrasing": {
                    "conforming_response": "Pass",
                    "deficient_response": "Fail",
                    "global": True,
                },
                "responsible_contractor": ctx.vendor(),
                "point_of_contact": ctx.person(),
                "inspectors": [inspector],
                "distribution_members": [ctx.person()],
                "signature_requests": [],
                "location": {**ctx.location(), "code": f"L{ctx.rng.randint(1, 9)}"},
                "trade": trade,
                "specification_section": {
                    "id": 7000 + section,
                    "description": trade["name"],
                    "section": f"{section:02d} 00 00",
                    "latest_revision_url": f"https://app.procore.invalid/specs/{7000 + section}",
                },
                "drawing_ids": [ctx.rng.randint(10**6, 10**7)],
                "current_drawing_revision_ids": [ctx.rng.randint(10**6, 10**7)],
                "attachments": ctx.attachments("inspection"),
                "managed_equipment_id": ctx.maybe(ctx.rng.randint(10**5, 10**6), 0.2),
                "private": False,
                "item_count": items,
                "conforming_item_count": conforming,
                "deficient_item_count": deficient,
                "not_applicable_item_count": not_applicable,
                "neutral_item_count": neutral,
                "inspected_item_count": conforming + deficient + not_applicable,
                "observations_count": observations,
                "closed_observations_count": ctx.rng.randint(0, observations),
                "custom_fields": ctx.custom_fields(),
                "closed_at": updated_at if closed else None,
                "closed_by": ctx.person() if closed else None,
                "project_id": ctx.project_ref()["id"],
                "created_by": ctx.person(),
                "created_at": created_at,
                "updated_at": updated_at,
                "deleted": False,
                "deleted_at": None,
            }
        )
    return out


def timesheets(ctx: GenContext) -> list[Record]:
    """Timesheets of one project, one per day going back from today (model Timesheet)."""
    out: list[Record] = []
    for i in range(ctx.count):
        day = ctx.anchor - timedelta(days=i + 1)
        created = day + timedelta(hours=ctx.rng.randint(15, 20))
        updated = min(
            created + timedelta(minutes=ctx.rng.randint(0, 600)),
            ctx.anchor - timedelta(seconds=1),
        )
        crew = {"id": ctx.rng.randint(100, 120), "name": f"Crew {ctx.rng.randint(1, 9)}"}
        author = ctx.person()
        entries = []
        for _ in range(ctx.rng.randint(1, 3)):
            worker = ctx.person()
            hours = ctx.rng.choice((4, 8, 8, 10))
            entries.append(
                {
                    "id": ctx.rng.randint(10**8, 10**9),
                    "date": day.date().isoformat(),
                    "hours": f"{hours}.0",
                    "time_in": f"{day.date().isoformat()}T07:00:00Z",
                    "time_out": f"{day.date().isoformat()}T{7 + hours:02d}:00:00Z",
                    "lunch_time": 30,
                    "billable": True,
                    "injured": False,
                    "description": None,
                    "crew": crew,
                    "cost_code": ctx.cost_code_ref(),
                    "login_information": worker,
                    "created_by": author,
                    "created_at": iso(created),
                    "updated_at": iso(updated),
                    "deleted_at": None,
                }
            )
        out.append(
            {
                "id": ctx.next_id(),
                "number": i + 1,
                "name": f"Timesheet {day.date().isoformat()}",
                "date": day.date().isoformat(),
                "status": ctx.rng.choice(("pending", "reviewed", "approved")),
                "created_by": author,
                "crew": crew,
                "timecard_entries": entries,
                "project_id": ctx.project_ref()["id"],
                "created_at": iso(created),
                "updated_at": iso(updated),
                "deleted_at": None,
            }
        )
    return out


def daily_manpower_logs(ctx: GenContext) -> list[Record]:
    """Manpower logs of one project over the past daily_log_days, some of them today.

    Model RestV10ProjectsProjectIdManpowerLogsGet200ResponseInner. About a third are pending.
    """
    out: list[Record] = []
    for i in range(ctx.count):
        days_back = 0 if i < max(1, ctx.count // 20) else ctx.rng.randint(1, ctx.daily_log_days)
        day = ctx.anchor - timedelta(days=days_back)
        created = day if days_back == 0 else day + timedelta(hours=ctx.rng.randint(7, 18))
        workers = ctx.rng.randint(1, 25)
        hours = ctx.rng.choice((4.0, 8.0, 8.0, 10.0))
        vendor = ctx.vendor()
        contact = ctx.person()
        out.append(
            {
                "id": ctx.next_id(),
                "date": day.date().isoformat(),
                "datetime": iso(created),
                "num_workers": workers,
                "num_hours": f"{hours:.1f}",
                "man_hours": f"{workers * hours:.1f}",
                "notes": ctx.rng.choice(("Pour level 2 deck", "Framing", "Rough-in", "Cleanup")),
                "status": "pending" if i % 3 == 2 else "approved",
                "position": i + 1,
                "vendor": vendor,
                "user": ctx.person(),
                "contact": {
                    "id": contact["id"],
                    "name": contact["name"],
                    "email": contact["login"],
                    "business_phone": f"+1 555 09{ctx.rng.randint(10, 99)}",
                    "business_phone_extension": None,
                    "fax_number": None,
                    "job_title": "Foreman",
                    "login_information_id": contact["id"],
                    "mobile_phone": None,
                    "vendor_name": vendor["name"],
                },
                "trade": ctx.trade(),
                "location": ctx.location(),
                "cost_code": ctx.cost_code_ref(),
                "attachments": ctx.attachments("manpower"),
                "custom_fields": ctx.custom_fields(),
                "permissions": {"can_update": True, "can_delete": False},
                "created_by": ctx.person(),
                "project_id": ctx.project_ref()["id"],
                "created_at": iso(created),
                "updated_at": iso(created),
                "deleted_at": None,
            }
        )
    return out
