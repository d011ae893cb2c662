"""Shared pieces of the seeded record generators: ids, timestamps, names, references."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

Record = dict[str, Any]

# Generated ids: BASE + (partition index << 24) + position. Ids minted later by create_record
# start at CREATED_BASE, above every generated one, so "order by id" stays creation order.
ID_BASE = 1 << 33
PARTITION_SHIFT = 24
CREATED_BASE = 1 << 50

FIRST_NAMES = (
    "Ana",
    "Ben",
    "Carla",
    "Dmitri",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Isla",
    "Jamal",
    "Keiko",
    "Luis",
    "Maya",
    "Noah",
    "Olga",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tariq",
    "Uma",
    "Victor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
)
LAST_NAMES = (
    "Alvarez",
    "Brooks",
    "Chen",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ibrahim",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quinto",
    "Rossi",
    "Silva",
    "Tanaka",
    "Urban",
    "Vance",
    "Weber",
    "Young",
    "Zhou",
)
CITIES = (
    ("Austin", "TX", "78701"),
    ("Denver", "CO", "80202"),
    ("Seattle", "WA", "98101"),
    ("Phoenix", "AZ", "85004"),
    ("Atlanta", "GA", "30303"),
    ("Boston", "MA", "02108"),
    ("Chicago", "IL", "60601"),
    ("Portland", "OR", "97204"),
    ("Nashville", "TN", "37203"),
    ("San Diego", "CA", "92101"),
)
STREETS = ("Main St", "Oak Ave", "Market St", "2nd Ave", "Harbor Blvd", "Elm St", "Pine Rd")
TRADES = ("Concrete", "Electrical", "Plumbing", "Drywall", "HVAC", "Roofing", "Steel", "Glazing")
LOCATIONS = ("Level 1", "Level 2", "Level 3", "Roof", "Basement", "Lobby", "Parking Deck")
COST_CODE_NAMES = (
    "General Conditions",
    "Cast-in-Place Concrete",
    "Structural Steel",
    "Rough Carpentry",
    "Roofing",
    "Doors and Frames",
    "Drywall",
    "Plumbing",
    "HVAC",
    "Electrical",
)
SCOPES = ("Base scope", "Alternate 1", "Owner allowance", "Tenant improvement")


def iso(moment: datetime) -> str:
    """Formats a UTC datetime the way Procore does: second precision with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def person_ref(person: Record) -> Record:
    """The compact {id, name, login} form Procore nests for users."""
    return {"id": person["id"], "name": person["name"], "login": person["email_address"]}


@dataclass
class GenContext:
    """Everything a generator needs to make one partition of records deterministically."""

    rng: random.Random
    anchor: datetime  # midnight UTC of "today": every generated timestamp lies before it
    count: int
    next_id: Callable[[], int]
    company: Record
    project: Record | None = None
    people: list[Record] = field(default_factory=list)
    vendors: list[Record] = field(default_factory=list)
    parents: list[Record] = field(default_factory=list)
    daily_log_days: int = 90
    inactive_projects: int = 0

    def person(self) -> Record:
        """A random company user as a nested {id, name, login} reference (or a placeholder)."""
        if not self.people:
            return {"id": self.company["id"] + 1, "name": "DMSA Service", "login": "dmsa@example"}
        return person_ref(self.rng.choice(self.people))

    def vendor(self) -> Record:
        """A random company vendor as a nested {id, name} reference."""
        if not self.vendors:
            return {"id": self.company["id"] + 2, "name": f"{self.company['name']} Self-Perform"}
        chosen = self.rng.choice(self.vendors)
        return {"id": chosen["id"], "name": chosen["name"]}

    def project_ref(self) -> Record:
        """The nested {id, name} project reference."""
        assert self.project is not None
        return {"id": self.project["id"], "name": self.project["name"]}

    def stamps(self, max_age_days: float = 400) -> tuple[str, str]:
        """A (created_at, updated_at) pair, updated no earlier than created, both before anchor."""
        created = self.anchor - timedelta(seconds=self.rng.uniform(3600, max_age_days * 86400))
        span = (self.anchor - created).total_seconds()
        updated = created + timedelta(seconds=self.rng.uniform(0, span * 0.9))
        return iso(created), iso(updated)

    def day(self, around: datetime | None = None, spread_days: int = 60) -> str:
        """A YYYY-MM-DD date within spread_days of around (default: anchor)."""
        base = around or self.anchor
        offset = self.rng.randint(-spread_days, spread_days)
        return (base + timedelta(days=offset)).date().isoformat()

    def name(self) -> tuple[str, str]:
        """A random (first, last) name."""
        return self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)

    def money(self, low: int, high: int) -> str:
        """A money amount as Procore's decimal string."""
        return f"{self.rng.randint(low, high)}.{self.rng.randint(0, 99):02d}"

    def user_ref(self) -> Record:
        """A company user as the {id, login, name} reference most list models nest."""
        return self.person()

    def maybe(self, value: Any, share: float = 0.5) -> Any:
        """value with probability share, else None (fields Procore leaves empty at times)."""
        return value if self.rng.random() < share else None

    def origin(self) -> tuple[str | None, str | None, str | None]:
        """(origin_id, origin_data, origin_code): set on the records an ERP sync created."""
        if self.rng.random() < 0.2:
            number = self.rng.randint(10_000, 99_999)
            return f"ERP-{number}", f'{{"erp":"sage300","key":{number}}}', f"S300-{number}"
        return None, None, None

    def location(self) -> Record:
        """A project location as list models nest it."""
        index = self.rng.randrange(len(LOCATIONS))
        created, updated = self.stamps(max_age_days=600)
        return {
            "id": 5000 + index,
            "name": LOCATIONS[index],
            "node_name": LOCATIONS[index],
            "parent_id": None if index == 0 else 5000,
            "created_at": created,
            "updated_at": updated,
        }

    def trade(self) -> Record:
        """A trade as list models nest it."""
        index = self.rng.randrange(len(TRADES))
        return {
            "id": 900 + index,
            "name": TRADES[index],
            "active": True,
            "updated_at": iso(self.anchor - timedelta(days=400 + index)),
        }

    def cost_code_ref(self) -> Record:
        """A cost code as the {id, name} reference list models nest."""
        index = self.rng.randrange(len(COST_CODE_NAMES))
        return {"id": 7_000_000 + index, "name": COST_CODE_NAMES[index]}

    def custom_fields(self) -> Record:
        """A project's custom field values, keyed custom_field_<definition id>."""
        return {
            "custom_field_51001": {"data_type": "string", "value": self.rng.choice(SCOPES)},
            "custom_field_51002": {"data_type": "boolean", "value": self.rng.random() < 0.5},
        }

    def attachments(self, kind: str, count: int | None = None) -> list[Record]:
        """File attachments: {id, url, filename, name}."""
        how_many = self.rng.randint(0, 2) if count is None else count
        out: list[Record] = []
        for _ in range(how_many):
            attachment_id = self.rng.randint(10**8, 10**9)
            filename = f"{kind}-{attachment_id % 10_000:04d}.pdf"
            out.append(
                {
                    "id": attachment_id,
                    "url": f"https://storage.procore.invalid/{attachment_id}/{filename}",
                    "filename": filename,
                    "name": filename,
                }
            )
        return out

    def currency(self) -> Record:
        """The currency configuration financial models nest."""
        return {"currency_iso_code": "USD"}

    def day_between(self, first: str, days: int) -> str:
        """A YYYY-MM-DD date up to `days` days after first."""
        start = date.fromisoformat(first)
        return (start + timedelta(days=self.rng.randint(0, days))).isoformat()


def anchor_for(today: date) -> datetime:
    """Midnight UTC at the start of today."""
    return datetime(today.year, today.month, today.day, tzinfo=UTC)
