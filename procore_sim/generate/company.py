"""Generators for company-level records: companies, projects, users, vendors."""

from __future__ import annotations

import random

from procore_sim.generate.common import (
    CITIES,
    STREETS,
    TRADES,
    GenContext,
    Record,
)

COMPANY_WORDS = (
    "Summit", "Keystone", "Ironwood", "Bluewater", "Granite", "Northstar", "Redwood", "Harbor",
    "Pinnacle", "Cornerstone", "Atlas", "Meridian",
)
COMPANY_SUFFIXES = ("Builders", "Construction", "Contracting", "Group", "Constructors")
PROJECT_KINDS = (
    "Medical Office", "Elementary School", "Mixed-Use Tower", "Distribution Center",
    "Parking Structure", "Library Renovation", "Hotel", "Data Center", "Fire Station",
)
STAGES = ((1, "Pre-Construction"), (2, "Course of Construction"), (3, "Post-Construction"),
          (4, "Bidding"), (5, "Warranty"))
TIME_ZONES = ("US/Central", "US/Mountain", "US/Pacific", "US/Arizona", "US/Eastern")
JOB_TITLES = ("Project Manager", "Superintendent", "Project Engineer", "Estimator",
              "Foreman", "Safety Manager", "Architect", "Owner's Rep")


def make_company(rng: random.Random, company_id: int, index: int) -> Record:
    """One company as /rest/v1.0/companies lists it."""
    name = f"{COMPANY_WORDS[index % len(COMPANY_WORDS)]} {rng.choice(COMPANY_SUFFIXES)}"
    if index >= len(COMPANY_WORDS):
        name = f"{name} {index // len(COMPANY_WORDS) + 1}"
    return {
        "id": company_id,
        "name": name,
        "is_active": True,
        "logo_url": None,
        "my_company": False,
    }


def projects(ctx: GenContext) -> list[Record]:
    """Projects of one company (fields of /rest/v1.1/projects)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps()
        city, state, zip_code = ctx.rng.choice(CITIES)
        stage_id, stage_name = ctx.rng.choice(STAGES)
        kind = ctx.rng.choice(PROJECT_KINDS)
        name = f"{city} {kind}"
        start = ctx.day(spread_days=300)
        out.append({
            "id": ctx.next_id(),
            "name": name,
            "display_name": f"{1000 + i} - {name}",
            "project_number": str(1000 + i),
            "address": f"{ctx.rng.randint(10, 9999)} {ctx.rng.choice(STREETS)}",
            "city": city,
            "state_code": state,
            "country_code": "US",
            "zip": zip_code,
            "time_zone": ctx.rng.choice(TIME_ZONES),
            "latitude": round(ctx.rng.uniform(25.0, 48.0), 6),
            "longitude": round(ctx.rng.uniform(-122.0, -71.0), 6),
            "stage": stage_name,
            "project_stage": {"id": stage_id, "name": stage_name},
            "active": ctx.rng.random() > 0.1,
            "origin_id": None,
            "origin_data": None,
            "company": {"id": ctx.company["id"], "name": ctx.company["name"]},
            "custom_fields": {},
            "start_date": start,
            "completion_date": ctx.day(spread_days=500),
            "total_value": ctx.money(500_000, 90_000_000),
            "created_at": created_at,
            "updated_at": updated_at,
        })
    return out


def users(ctx: GenContext) -> list[Record]:
    """Company directory users (fields of /rest/v1.3/companies/{cid}/users)."""
    out: list[Record] = []
    domain = ctx.company["name"].lower().replace(" ", "") + ".example"
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps()
        first, last = ctx.name()
        city, state, zip_code = ctx.rng.choice(CITIES)
        out.append({
            "id": ctx.next_id(),
            "name": f"{first} {last}",
            "first_name": first,
            "last_name": last,
            "email_address": f"{first.lower()}.{last.lower()}{i}@{domain}",
            "job_title": ctx.rng.choice(JOB_TITLES),
            "is_active": ctx.rng.random() > 0.05,
            "is_employee": ctx.rng.random() > 0.3,
            "employee_id": f"E{10000 + i}",
            "business_phone": f"+1 555 01{ctx.rng.randint(10, 99)}",
            "mobile_phone": None,
            "address": f"{ctx.rng.randint(10, 999)} {ctx.rng.choice(STREETS)}",
            "city": city,
            "state_code": state,
            "zip": zip_code,
            "country_code": "US",
            "avatar": None,
            "vendor": None,
            "origin_id": None,
            "last_login_at": updated_at,
            "created_at": created_at,
            "updated_at": updated_at,
        })
    return out


def vendors(ctx: GenContext) -> list[Record]:
    """Company directory vendors (fields of /rest/v1.0/vendors)."""
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps()
        trade = ctx.rng.choice(TRADES)
        city, state, zip_code = ctx.rng.choice(CITIES)
        name = f"{ctx.rng.choice(COMPANY_WORDS)} {trade} {('LLC', 'Inc.', 'Co.')[i % 3]}"
        out.append({
            "id": ctx.next_id(),
            "name": name,
            "abbreviated_name": name[:10],
            "trade_name": trade,
            "address": f"{ctx.rng.randint(10, 9999)} {ctx.rng.choice(STREETS)}",
            "city": city,
            "state_code": state,
            "zip": zip_code,
            "country_code": "US",
            "business_phone": f"+1 555 02{ctx.rng.randint(10, 99)}",
            "email_address": f"office{i}@{trade.lower()}.example",
            "website": None,
            "license_number": f"LIC-{ctx.rng.randint(100000, 999999)}",
            "is_active": ctx.rng.random() > 0.1,
            "labor_union": None,
            "origin_id": None,
            "created_at": created_at,
            "updated_at": updated_at,
        })
    return out
