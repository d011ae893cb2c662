"""Generators for company-level records: companies, projects, users, vendors."""

from __future__ import annotations

import random
from datetime import timedelta

from procore_sim.generate.common import (
    CITIES,
    STREETS,
    TRADES,
    GenContext,
    Record,
    iso,
)

COMPANY_WORDS = (
    "Summit",
    "Keystone",
    "Ironwood",
    "Bluewater",
    "Granite",
    "Northstar",
    "Redwood",
    "Harbor",
    "Pinnacle",
    "Cornerstone",
    "Atlas",
    "Meridian",
)
COMPANY_SUFFIXES = ("Builders", "Construction", "Contracting", "Group", "Constructors")
PROJECT_KINDS = (
    "Medical Office",
    "Elementary School",
    "Mixed-Use Tower",
    "Distribution Center",
    "Parking Structure",
    "Library Renovation",
    "Hotel",
    "Data Center",
    "Fire Station",
)
STAGES = (
    (1, "Pre-Construction"),
    (2, "Course of Construction"),
    (3, "Post-Construction"),
    (4, "Bidding"),
    (5, "Warranty"),
)
TIME_ZONES = ("US/Central", "US/Mountain", "US/Pacific", "US/Arizona", "US/Eastern")
JOB_TITLES = (
    "Project Manager",
    "Superintendent",
    "Project Engineer",
    "Estimator",
    "Foreman",
    "Safety Manager",
    "Architect",
    "Owner's Rep",
)


def make_company(rng: random.Random, company_id: int, index: int) -> Record:
    """One company as /rest/v1.0/companies lists it (model Company)."""
    name = f"{COMPANY_WORDS[index % len(COMPANY_WORDS)]} {rng.choice(COMPANY_SUFFIXES)}"
    if index >= len(COMPANY_WORDS):
        name = f"{name} {index // len(COMPANY_WORDS) + 1}"
    return {
        "id": company_id,
        "name": name,
        "is_active": True,
        "logo_url": f"https://storage.procore.invalid/logos/{company_id}.png",
        "pcn_business_experience": rng.random() < 0.5,
        "my_company": False,
    }


def _named(ctx: GenContext, base: int, names: tuple[str, ...]) -> Record:
    index = ctx.rng.randrange(len(names))
    return {"id": base + index, "name": names[index]}


def projects(ctx: GenContext) -> list[Record]:
    """Projects of one company (model RestV11ProjectsGet200ResponseInner).

    The last ctx.inactive_projects of them are inactive (at least one stays active).
    """
    out: list[Record] = []
    inactive_from = ctx.count - min(ctx.inactive_projects, max(ctx.count - 1, 0))
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps()
        city, state, zip_code = ctx.rng.choice(CITIES)
        stage_id, stage_name = ctx.rng.choice(STAGES)
        kind = ctx.rng.choice(PROJECT_KINDS)
        name = f"{city} {kind}"
        start = ctx.day(spread_days=300)
        finish = ctx.day_between(start, 700)
        origin_id, origin_data, origin_code = ctx.origin()
        if i % 2 and origin_id is None:  # every other project came from the ERP
            origin_id, origin_data, origin_code = f"JOB-{1000 + i}", '{"erp":"sage300"}', "S300"
        project_id = ctx.next_id()
        number = str(1000 + i)
        total = ctx.rng.randint(500_000, 90_000_000)
        out.append(
            {
                "id": project_id,
                "name": name,
                "display_name": f"{number} - {name}",
                "project_number": number,
                "accounting_project_number": f"ACC-{number}",
                "address": f"{ctx.rng.randint(10, 9999)} {ctx.rng.choice(STREETS)}",
                "city": city,
                "state_code": state,
                "country_code": "US",
                "zip": zip_code,
                "county": f"{city} County",
                "time_zone": ctx.rng.choice(TIME_ZONES),
                "tz_name": ctx.rng.choice(
                    ("America/Chicago", "America/Denver", "America/New_York")
                ),
                "latitude": round(ctx.rng.uniform(25.0, 48.0), 6),
                "longitude": round(ctx.rng.uniform(-122.0, -71.0), 6),
                "stage": stage_name,
                "project_stage": {"id": stage_id, "name": stage_name},
                "project_template": _named(ctx, 60, ("Commercial Template", "Public Works")),
                "project_type": _named(ctx, 70, ("Healthcare", "Education", "Commercial")),
                "project_region": _named(ctx, 80, ("West", "Central", "East")),
                "project_bid_type": _named(ctx, 90, ("Hard Bid", "Negotiated")),
                "project_owner_type": _named(ctx, 95, ("Private", "Public")),
                "office": {"id": ctx.company["id"] % 100_000 + 1, "name": "Main Office"},
                "program": _named(ctx, 110, ("Capital Program", "Renovations")),
                "departments": [_named(ctx, 120, ("Operations", "Preconstruction"))],
                "persistent_message": {"title": "Site access", "message": "Badge in at gate 2."},
                "project_region_id": 80,
                "project_bid_type_id": 90,
                "project_owner_type_id": 95,
                "owners_project_id": ctx.rng.randint(100, 999),
                "parent_job_id": None,
                "photo_id": ctx.rng.randint(10**6, 10**7),
                "logo_url": f"https://storage.procore.invalid/projects/{project_id}.png",
                "phone": f"+1 555 03{ctx.rng.randint(10, 99)}",
                "description": f"New {kind.lower()} in {city}, {state}.",
                "public_notes": "Owner walkthrough every second Friday.",
                "flag": ctx.rng.choice(("Green", "Yellow", "Red")),
                "inbound_email": f"project-{project_id}@inbound.procore.invalid",
                "dictionary_type": "default",
                "designated_market_area": f"{city} DMA",
                "store_number": ctx.maybe(f"S{ctx.rng.randint(100, 999)}", 0.3),
                "square_feet": ctx.rng.randint(5_000, 400_000),
                "standard_cost_code_list_id": ctx.company["id"] % 100_000 + 7,
                "is_demo": False,
                "active": i < inactive_from,
                "origin_id": origin_id,
                "origin_data": origin_data,
                "origin_code": origin_code,
                "company": {"id": ctx.company["id"], "name": ctx.company["name"]},
                "custom_fields": ctx.custom_fields(),
                "start_date": start,
                "completion_date": finish,
                "actual_start_date": ctx.day_between(start, 20),
                "estimated_start_date": start,
                "estimated_completion_date": finish,
                "projected_finish_date": ctx.day_between(finish, 60),
                "warranty_start_date": finish,
                "warranty_end_date": ctx.day_between(finish, 730),
                "total_value": float(total),
                "estimated_value": float(total + ctx.rng.randint(0, total // 10)),
                "created_at": created_at,
                "updated_at": updated_at,
            }
        )
    return out


def users(ctx: GenContext) -> list[Record]:
    """Company directory users (model RestV13CompaniesCompanyIdUsersGet200ResponseInner).

    Every tenth user is inactive (Procore lists those on /users/inactive).
    """
    out: list[Record] = []
    domain = ctx.company["name"].lower().replace(" ", "") + ".example"
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps()
        first, last = ctx.name()
        city, state, zip_code = ctx.rng.choice(CITIES)
        origin_id, origin_data, _ = ctx.origin()
        template = ctx.rng.choice(((1, "Project Manager"), (2, "Superintendent"), (3, "Read Only")))
        vendor = ctx.vendor() if ctx.vendors and ctx.rng.random() < 0.3 else None
        login = ctx.anchor - timedelta(hours=ctx.rng.randint(1, 2000))
        user_id = ctx.next_id()
        out.append(
            {
                "id": user_id,
                "name": f"{first} {last}",
                "first_name": first,
                "last_name": last,
                "initials": f"{first[0]}{last[0]}",
                "email_address": f"{first.lower()}.{last.lower()}{i}@{domain}",
                "email_signature": f"{first} {last}\n{ctx.company['name']}",
                "job_title": ctx.rng.choice(JOB_TITLES),
                "is_active": i % 10 != 9,
                "is_employee": vendor is None,
                "verified_employee": vendor is None and ctx.rng.random() < 0.8,
                "erp_integrated_accountant": ctx.rng.random() < 0.05,
                "employee_id": f"E{10000 + i}",
                "business_id": f"B{ctx.rng.randint(1000, 9999)}",
                "business_phone": f"+1 555 01{ctx.rng.randint(10, 99)}",
                "business_phone_extension": ctx.rng.randint(100, 999),
                "mobile_phone": f"+1 555 04{ctx.rng.randint(10, 99)}",
                "fax_number": ctx.maybe(f"+1 555 05{ctx.rng.randint(10, 99)}", 0.2),
                "address": f"{ctx.rng.randint(10, 999)} {ctx.rng.choice(STREETS)}",
                "city": city,
                "state_code": state,
                "zip": zip_code,
                "country_code": "US",
                "avatar": ctx.maybe(f"https://storage.procore.invalid/avatars/{i}.png", 0.4),
                "notes": ctx.maybe("Prefers email.", 0.2),
                "contact_id": ctx.rng.randint(10**6, 10**7),
                "work_classification_id": ctx.rng.choice((None, 11, 12)),
                "role": ctx.rng.choice(("Employee", "Collaborator")),
                "permission_template": {
                    "id": template[0],
                    "name": template[1],
                    "project_specific": False,
                    "type": "project",
                },
                "company_permission_template": {
                    "id": 20 + template[0],
                    "name": f"Company {template[1]}",
                    "project_specific": False,
                    "type": "company",
                },
                "vendor": vendor,
                "origin_id": origin_id,
                "origin_data": origin_data,
                "welcome_email_sent_at": created_at,
                # Procore's inactive-user list carries this link; the simulator always does.
                "links": {
                    "reactivate": f"/rest/v1.0/companies/{ctx.company['id']}/users/{user_id}"
                },
                "last_login_at": iso(max(login, ctx.anchor - timedelta(days=3000))),
                "created_at": created_at,
                "updated_at": updated_at,
            }
        )
    return out


BIDDING_FLAGS = (
    "affirmative_action",
    "small_business",
    "african_american_business",
    "hispanic_business",
    "womens_business",
    "historically_underutilized_business",
    "sdvo_business",
    "certified_business_enterprise",
    "asian_american_business",
    "native_american_business",
    "disadvantaged_business",
    "minority_business_enterprise",
    "eight_a_business",
)


def vendors(ctx: GenContext) -> list[Record]:
    """Company directory vendors (model RestV10VendorsGet200ResponseInner).

    Every tenth vendor is inactive (Procore lists those on /vendors/inactive).
    """
    out: list[Record] = []
    for i in range(ctx.count):
        created_at, updated_at = ctx.stamps()
        trade_index = ctx.rng.randrange(len(TRADES))
        trade = TRADES[trade_index]
        city, state, zip_code = ctx.rng.choice(CITIES)
        name = f"{ctx.rng.choice(COMPANY_WORDS)} {trade} {('LLC', 'Inc.', 'Co.')[i % 3]}"
        origin_id, origin_data, origin_code = ctx.origin()
        first, last = ctx.name()
        union = ctx.rng.random() < 0.3
        vendor_id = ctx.next_id()
        out.append(
            {
                "id": vendor_id,
                "name": name,
                "company": name,
                "legal_name": f"{name} of {state}",
                "abbreviated_name": name[:10],
                "trade_name": trade,
                "address": f"{ctx.rng.randint(10, 9999)} {ctx.rng.choice(STREETS)}",
                "city": city,
                "state_code": state,
                "zip": zip_code,
                "country_code": "US",
                "business_id": f"EIN-{ctx.rng.randint(10, 99)}-{ctx.rng.randint(1000000, 9999999)}",
                "business_phone": f"+1 555 02{ctx.rng.randint(10, 99)}",
                "mobile_phone": f"+1 555 06{ctx.rng.randint(10, 99)}",
                "fax_number": ctx.maybe(f"+1 555 07{ctx.rng.randint(10, 99)}", 0.3),
                "email_address": f"office{i}@{trade.lower()}.example",
                "website": f"https://www.{trade.lower()}{i}.example",
                "license_number": f"LIC-{ctx.rng.randint(100000, 999999)}",
                "logo": ctx.maybe(f"https://storage.procore.invalid/vendors/{vendor_id}.png", 0.4),
                "notes": ctx.maybe("Bonded and insured.", 0.4),
                "is_active": i % 10 != 9,
                "is_connected": ctx.rng.random() < 0.2,
                "company_vendor": True,
                "authorized_bidder": ctx.rng.random() < 0.7,
                "prequalified": ctx.rng.random() < 0.5,
                "synced_to_erp": origin_id is not None,
                "union_member": union,
                "labor_union": ctx.rng.choice(("IBEW Local 46", "UA Local 32")) if union else None,
                "non_union_prevailing_wage": not union and ctx.rng.random() < 0.2,
                "contact_count": ctx.rng.randint(1, 12),
                "children_count": 0,
                "parent": {"id": None, "name": None} if i % 7 else {"id": vendor_id, "name": name},
                "attachments": ctx.attachments("w9"),
                "business_register": {
                    "id": ctx.rng.randint(10**5, 10**6),
                    "type": "ein",
                    "identifier": f"{ctx.rng.randint(10, 99)}-{ctx.rng.randint(1000000, 9999999)}",
                    "verified_at": updated_at,
                    "verification_status": "verified",
                },
                "primary_contact": {
                    "id": ctx.rng.randint(10**6, 10**7),
                    "first_name": first,
                    "last_name": last,
                    "business_phone": f"+1 555 08{ctx.rng.randint(10, 99)}",
                    "business_phone_extension": None,
                    "fax_number": None,
                    "mobile_phone": None,
                    "email_address": f"{first.lower()}@{trade.lower()}.example",
                    "created_at": created_at,
                    "updated_at": updated_at,
                },
                "vendor_group": {"id": 300 + trade_index},
                "bidding": {flag: ctx.rng.random() < 0.15 for flag in BIDDING_FLAGS},
                "bidding_distribution": [],
                "project_ids": [],
                "standard_cost_codes": [],
                "trades": [
                    {
                        "id": 900 + trade_index,
                        "name": trade,
                        "active": True,
                        "updated_at": created_at,
                    }
                ],
                "origin_id": origin_id,
                "origin_data": origin_data,
                "origin_code": origin_code,
                # Procore's inactive-vendor list carries this link; the simulator always does.
                "links": {
                    "reactivate": f"/rest/v1.0/companies/{ctx.company['id']}/vendors/{vendor_id}"
                },
                "created_at": created_at,
                "updated_at": updated_at,
            }
        )
    return out
