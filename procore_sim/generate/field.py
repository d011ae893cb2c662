"""Generators for field records: documents, checklists, timesheets, manpower logs."""

from __future__ import annotations

from datetime import timedelta

from procore_sim.generate.common import LOCATIONS, TRADES, GenContext, Record, iso

FILE_KINDS = (("pdf", "Drawings"), ("pdf", "Specifications"), ("xlsx", "Schedules"),
              ("jpg", "Photos"), ("docx", "Contracts"), ("dwg", "CAD"))


def documents(ctx: GenContext) -> list[Record]:
    """Flat document list of one project (folders and files, /projects/{pid}/documents)."""
    out: list[Record] = []
    folders: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=400)
        is_folder = not folders or ctx.rng.random() < 0.15
        parent = ctx.rng.choice(folders) if folders and ctx.rng.random() < 0.8 else None
        extension, topic = ctx.rng.choice(FILE_KINDS)
        name = f"{topic} {i + 1}" if is_folder else f"{topic.lower()}-{i + 1:04d}.{extension}"
        path = f"{parent['name_with_path']}/{name}" if parent else name
        record: Record = {
            "id": ctx.next_id(),
            "name": name,
            "name_with_path": path,
            "document_type": "folder" if is_folder else "file",
            "parent_id": parent["id"] if parent else None,
            "file_type": None if is_folder else extension,
            "private": ctx.rng.random() < 0.05,
            "is_tracked": False,
            "is_deleted": False,
            "is_in_recycle_bin": False,
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


def checklists(ctx: GenContext) -> list[Record]:
    """Inspections (checklist lists) of one project."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps(max_age_days=200)
        status = ctx.rng.choice(("open", "in_review", "closed"))
        trade = ctx.rng.choice(TRADES)
        out.append({
            "id": ctx.next_id(),
            "number": i + 1,
            "name": f"{trade} pre-installation inspection",
            "description": None,
            "identifier": f"INSP-{i + 1:04d}",
            "status": status,
            "inspection_date": ctx.day(spread_days=60),
            "due_date": ctx.day(spread_days=60),
            "inspection_type": {"id": 300 + TRADES.index(trade), "name": f"{trade} Inspection"},
            "list_template_id": 400 + TRADES.index(trade),
            "responsible_party": ctx.vendor(),
            "location": {"id": 5000, "name": ctx.rng.choice(LOCATIONS)},
            "trade": {"id": 900 + TRADES.index(trade), "name": trade},
            "private": False,
            "item_count": ctx.rng.randint(3, 40),
            "closed_at": updated_at if status == "closed" else None,
            "closed_by": ctx.person() if status == "closed" else None,
            "project_id": ctx.project_ref()["id"],
            "created_by": ctx.person(),
            "created_at": created_at,
            "updated_at": updated_at,
            "deleted_at": None,
        })
    return out


def timesheets(ctx: GenContext) -> list[Record]:
    """Timesheets of one project, one per day going back from today."""
    out: list[Record] = []
    for i in range(ctx.count):
        day = ctx.anchor - timedelta(days=i + 1)
        created = day + timedelta(hours=ctx.rng.randint(15, 20))
        updated = created + timedelta(minutes=ctx.rng.randint(0, 600))
        out.append({
            "id": ctx.next_id(),
            "number": i + 1,
            "date": day.date().isoformat(),
            "status": ctx.rng.choice(("pending", "reviewed", "approved")),
            "created_by": ctx.person(),
            "crew": {"id": ctx.rng.randint(100, 120), "name": f"Crew {ctx.rng.randint(1, 9)}"},
            "project_id": ctx.project_ref()["id"],
            "created_at": iso(created),
            "updated_at": iso(min(updated, ctx.anchor - timedelta(seconds=1))),
            "deleted_at": None,
        })
    return out


def daily_manpower_logs(ctx: GenContext) -> list[Record]:
    """Manpower logs of one project spread over the past daily_log_days, some of them today."""
    out: list[Record] = []
    for i in range(ctx.count):
        days_back = 0 if i < max(1, ctx.count // 20) else ctx.rng.randint(1, ctx.daily_log_days)
        day = ctx.anchor - timedelta(days=days_back)
        created = day if days_back == 0 else day + timedelta(hours=ctx.rng.randint(7, 18))
        workers = ctx.rng.randint(1, 25)
        hours = ctx.rng.choice((4.0, 8.0, 8.0, 10.0))
        vendor = ctx.vendor()
        out.append({
            "id": ctx.next_id(),
            "date": day.date().isoformat(),
            "datetime": iso(created),
            "num_workers": workers,
            "num_hours": hours,
            "man_hours": workers * hours,
            "notes": ctx.rng.choice(("", "Pour level 2 deck", "Framing", "Rough-in", "Cleanup")),
            "status": ctx.rng.choice(("approved", "pending")),
            "position": i + 1,
            "vendor": vendor,
            "contact": None,
            "location": {"id": 5000, "name": ctx.rng.choice(LOCATIONS)},
            "cost_code": None,
            "created_by": ctx.person(),
            "project_id": ctx.project_ref()["id"],
            "created_at": iso(created),
            "updated_at": iso(created),
        })
    return out
