"""In-memory record store: lazily generated partitions, pre-serialized records, mutations."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from procore_sim.catalog import STREAM_NAMES, STREAMS, StreamSpec
from procore_sim.config import SimulatorConfig
from procore_sim.generate.common import (
    CREATED_BASE,
    ID_BASE,
    PARTITION_SHIFT,
    GenContext,
    Record,
    anchor_for,
    iso,
)
from procore_sim.generate.company import make_company

View = Literal["active", "deleted", "all"]
PartitionKey = tuple[str, int, int]  # (stream, company_id, project_id or 0)


class UnknownRecordError(LookupError):
    """No record with that id in that stream."""


def dumps(record: Record) -> bytes:
    """Compact JSON, as served."""
    return json.dumps(record, separators=(",", ":")).encode()


def parse_ts(value: Any) -> float | None:
    """Epoch seconds of an ISO 8601 timestamp, or None."""
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass(slots=True)
class Stored:
    """One record plus what serving it needs: its JSON bytes and parsed timestamps."""

    data: Record
    raw: bytes = b""
    updated_ts: float | None = None
    deleted: bool = False
    deleted_ts: float | None = None
    # Another serialization of the same record (a compact view), made on first use.
    alt_raw: bytes | None = None

    def refresh(self) -> None:
        """Recomputes the cached bytes and timestamps after a change to data."""
        self.raw = dumps(self.data)
        self.alt_raw = None
        self.updated_ts = parse_ts(self.data.get("updated_at"))


@dataclass
class Partition:
    """The records of one stream in one company (and project), ordered by id."""

    key: PartitionKey
    items: list[Stored] = field(default_factory=list)
    version: int = 0
    _cache: dict[View, tuple[int, list[Stored]]] = field(default_factory=dict)
    # Derived serializations (compact views, budget rows), each tagged with the version it is of.
    extra_cache: dict[str, tuple[int, list[bytes]]] = field(default_factory=dict)

    def view(self, view: View) -> list[Stored]:
        """Active, deleted or all records; cached until the partition changes."""
        hit = self._cache.get(view)
        if hit is not None and hit[0] == self.version:
            return hit[1]
        if view == "all":
            chosen = list(self.items)
        else:
            want_deleted = view == "deleted"
            chosen = [s for s in self.items if s.deleted == want_deleted]
        self._cache[view] = (self.version, chosen)
        return chosen


class RecordStore:
    """Every company, project and record of the simulated Procore. Not thread-safe by itself."""

    def __init__(self, config: SimulatorConfig, clock_now: float) -> None:
        self.config = config
        self.anchor = anchor_for(config.today or datetime.fromtimestamp(clock_now, UTC).date())
        self._partitions: dict[PartitionKey, Partition] = {}
        self._index: dict[int, tuple[Partition, Stored]] = {}
        self._created = 0
        self._created_projects: set[int] = set()
        self._project_company: dict[int, int] = {}
        self._project_slot: dict[int, int] = {}
        self._people: dict[int, list[Record]] = {}
        self._vendors: dict[int, list[Record]] = {}
        self.companies: list[Record] = []
        rng = random.Random(f"{config.seed}:companies")
        # Installed companies, then never-installed ones, then installed free ones: adding a kind
        # never moves the ids of the others.
        total = config.companies + config.uninstalled_companies + config.free_companies
        for index in range(total):
            self.companies.append(make_company(rng, ID_BASE + index, index))
        self._company_index = {c["id"]: i for i, c in enumerate(self.companies)}
        for company in self.companies:
            cid = company["id"]
            for slot, stored in enumerate(self.partition("projects", cid, 0).items, start=1):
                self._project_company[stored.data["id"]] = cid
                self._project_slot[stored.data["id"]] = slot
            # Vendors first: users reference them (a vendor's employees).
            self._vendors[cid] = [dict(s.data) for s in self.partition("vendors", cid, 0).items]
            self._people[cid] = [dict(s.data) for s in self.partition("users", cid, 0).items]

    # ---- lookup -------------------------------------------------------------------------
    def company_exists(self, company_id: int) -> bool:
        """Whether the company exists in the simulated Procore at all."""
        return company_id in self._company_index

    def project_company(self, project_id: int) -> int | None:
        """The company of a live (not deleted) project, or None."""
        return self._project_company.get(project_id)

    def project_ids(self, company_id: int) -> list[int]:
        """Live project ids of a company, by id."""
        if not self.company_exists(company_id):
            return []
        return [s.data["id"] for s in self.partition("projects", company_id, 0).view("active")]

    def _pidx(self, spec: StreamSpec, company_id: int, project_id: int) -> int | None:
        slot = 0 if project_id == 0 else self._project_slot.get(project_id)
        if slot is None:
            return None
        ci = self._company_index[company_id]
        per_company = self.config.projects + 1
        return 1 + (ci * per_company + slot) * len(STREAM_NAMES) + STREAM_NAMES.index(spec.name)

    def partition(self, stream: str, company_id: int, project_id: int) -> Partition:
        """The partition of a stream, generated on first use."""
        key = (stream, company_id, project_id)
        part = self._partitions.get(key)
        if part is None:
            part = Partition(key)
            self._partitions[key] = part
            spec = STREAMS[stream]
            pidx = self._pidx(spec, company_id, project_id)
            if pidx is not None:
                self._fill(part, spec, pidx)
        return part

    def _fill(self, part: Partition, spec: StreamSpec, pidx: int) -> None:
        _, company_id, project_id = part.key
        counter = iter(range(1 << PARTITION_SHIFT))
        base = ID_BASE + (pidx << PARTITION_SHIFT)
        ctx = self._context(
            spec,
            company_id,
            project_id,
            spec.count(self.config),
            f"{self.config.seed}:{spec.name}:{pidx}",
            lambda: base + next(counter),
        )
        for record in spec.generate(ctx):
            self._add(part, record)

    def _context(
        self,
        spec: StreamSpec,
        company_id: int,
        project_id: int,
        count: int,
        seed: str,
        next_id: Any,
    ) -> GenContext:
        project = None
        parents: list[Record] = []
        if project_id:
            project_part = self.partition("projects", company_id, 0)
            project = next(
                (s.data for s in project_part.items if s.data["id"] == project_id),
                {"id": project_id, "name": f"Project {project_id}"},
            )
            if spec.parent is not None:
                parent_part = self.partition(spec.parent, company_id, project_id)
                parents = [s.data for s in parent_part.view("active")]
        return GenContext(
            rng=random.Random(seed),
            anchor=self.anchor,
            count=count,
            next_id=next_id,
            company=self.companies[self._company_index[company_id]],
            project=project,
            people=self._people.get(company_id, []),
            vendors=self._vendors.get(company_id, []),
            parents=parents,
            daily_log_days=self.config.daily_log_days,
            inactive_projects=self.config.inactive_projects,
        )

    def _add(self, part: Partition, record: Record) -> Stored:
        stored = Stored(record)
        stored.refresh()
        part.items.append(stored)
        part.version += 1
        self._index[record["id"]] = (part, stored)
        return stored

    def find(self, stream: str, record_id: int) -> tuple[Partition, Stored]:
        """The partition and stored record of an id; UnknownRecordError if absent."""
        hit = self._index.get(record_id)
        if hit is None:
            self._generate_owner(record_id)
            hit = self._index.get(record_id)
        if hit is None or hit[0].key[0] != stream:
            raise UnknownRecordError(f"no {stream} record {record_id}")
        return hit

    def _generate_owner(self, record_id: int) -> None:
        """Generates the partition a generated id belongs to (ids encode their partition)."""
        if not ID_BASE <= record_id < CREATED_BASE:
            return
        rest = ((record_id - ID_BASE) >> PARTITION_SHIFT) - 1
        if rest < 0:
            return
        stream_index = rest % len(STREAM_NAMES)
        rest //= len(STREAM_NAMES)
        slot = rest % (self.config.projects + 1)
        company_index = rest // (self.config.projects + 1)
        if company_index >= len(self.companies):
            return
        company_id = self.companies[company_index]["id"]
        project_id = 0
        if slot:
            matches = [
                p
                for p, s in self._project_slot.items()
                if s == slot and self._project_company.get(p) == company_id
            ]
            if not matches:
                return
            project_id = matches[0]
        self.partition(STREAM_NAMES[stream_index], company_id, project_id)

    def owner(self, stream: str, record_id: int) -> tuple[int, int]:
        """(company_id, project_id or 0) of a record."""
        part, _ = self.find(stream, record_id)
        return part.key[1], part.key[2]

    def people(self, company_id: int) -> list[Record]:
        """The company's users as generated (webhook events name one as the changing user)."""
        return self._people.get(company_id, [])

    # ---- reads --------------------------------------------------------------------------
    def partitions_of(
        self,
        stream: str,
        company_id: int,
        project_id: int | None,
    ) -> list[Partition]:
        """Partitions covering a company (all its live projects when project_id is None)."""
        spec = STREAMS[stream]
        if spec.scope == "company":
            return [self.partition(stream, company_id, 0)]
        if project_id is not None:
            return [self.partition(stream, company_id, project_id)]
        return [self.partition(stream, company_id, pid) for pid in self.project_ids(company_id)]

    # ---- mutations ----------------------------------------------------------------------
    def create(
        self,
        stream: str,
        company_id: int,
        project_id: int | None,
        fields: Record | None,
        now: float,
    ) -> Record:
        """Creates a record with a fresh id and generated defaults overridden by fields."""
        spec = STREAMS[stream]
        if not self.company_exists(company_id):
            raise UnknownRecordError(f"no company {company_id}")
        pid = 0
        if spec.scope == "project":
            if project_id is None or self.project_company(project_id) != company_id:
                raise UnknownRecordError(f"no project {project_id} in company {company_id}")
            pid = project_id
        part = self.partition(stream, company_id, pid)

        def next_id() -> int:
            self._created += 1
            return CREATED_BASE + self._created

        ctx = self._context(
            spec,
            company_id,
            pid,
            1,
            f"{self.config.seed}:{stream}:created:{self._created}",
            next_id,
        )
        record = spec.generate(ctx)[0]
        if isinstance(record.get("number"), str):
            record["number"] = str(len(part.items) + 1)
        stamp = iso(datetime.fromtimestamp(now, UTC))
        for key in ("created_at", "updated_at"):
            if key in record:
                record[key] = stamp
        record.update({k: v for k, v in (fields or {}).items() if k != "id"})
        self._add(part, record)
        if stream == "projects":
            self._project_company[record["id"]] = company_id
            self._created_projects.add(record["id"])
        return record

    def update(self, stream: str, record_id: int, fields: Record | None, now: float) -> Record:
        """Applies fields to a record and bumps updated_at to now."""
        part, stored = self.find(stream, record_id)
        stored.data.update({k: v for k, v in (fields or {}).items() if k != "id"})
        if "updated_at" in stored.data:
            stored.data["updated_at"] = iso(datetime.fromtimestamp(now, UTC))
        stored.refresh()
        part.version += 1
        return stored.data

    def delete(self, stream: str, record_id: int, now: float) -> None:
        """Soft-deletes where Procore keeps deleted records visible, hard-deletes otherwise."""
        part, stored = self.find(stream, record_id)
        spec = STREAMS[stream]
        stamp = iso(datetime.fromtimestamp(now, UTC))
        if spec.delete_mode == "hard":
            part.items.remove(stored)
            del self._index[record_id]
            if stream == "projects":
                self._project_company.pop(record_id, None)
        elif not stored.deleted:
            stored.deleted = True
            stored.deleted_ts = now
            # Each model's own deletion flags: RFIs and checklists `deleted`, documents
            # `is_deleted` ("in the recycle bin") and `is_in_recycle_bin`.
            for flag in ("deleted", "is_deleted", "is_in_recycle_bin"):
                if flag in stored.data:
                    stored.data[flag] = True
            stored.data["deleted_at"] = stamp
            if "updated_at" in stored.data:
                stored.data["updated_at"] = stamp
            stored.refresh()
        part.version += 1
