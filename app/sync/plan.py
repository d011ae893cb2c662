"""Which (stream, project) units a run reads, in which order: pure rules, no I/O.

- Units webhook events asked for (targets) come first, oldest event first.
- A targeted run stops there; any other run goes on with every unit of every selected stream,
  except that units of streams webhooks cover are read only when due (see `Coverage`).
- The rest go stalest first: never read, then the oldest time up to which a unit is known
  complete. A run that must stop early (request budget, waiting events) leaves the freshest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from app.procore.catalog import STREAMS, Cursor, Scope, Stream
from app.runs.targets import RunTargets, unit_key
from app.sync.context import Coverage

# Reconciliation reads a covered unit once per interval; per hour it may read this much more
# than the even share (units/interval), so units that fell behind catch up.
CATCH_UP = 1.25
EARLIEST = datetime.min.replace(tzinfo=UTC)

UnitKey = tuple[str, int | None]


@dataclass(frozen=True)
class UnitState:
    """What planning needs of a unit's stored state."""

    cursor: datetime | None
    last_success_at: datetime | None


@dataclass(frozen=True)
class PlannedUnit:
    """One unit a run reads."""

    stream: str
    project_id: int | None
    target: bool = False
    # A covered stream's unit read by reconciliation (counted per hour).
    reconcile: bool = False
    known_until: datetime | None = None

    @property
    def key(self) -> str:
        """The unit's key (`stream:project`)."""
        return unit_key(self.stream, self.project_id)


def known_until(stream: Stream, state: UnitState | None) -> datetime | None:
    """The time up to which a unit is known complete: the end of its last `updated_at` window,
    or for streams read in full (or by dates) the end of its last read."""
    if state is None:
        return None
    if stream.cursor == Cursor.updated_at:
        return state.cursor
    return state.last_success_at


def reconcile_quota(covered_units: int, coverage: Coverage) -> int:
    """Covered units reconciliation may read now (interval-due ones only)."""
    interval = max(coverage.interval.total_seconds(), 60.0)
    per_hour = math.ceil(covered_units * 3600 / interval * CATCH_UP)
    return max(0, per_hour - coverage.reconciled_last_hour)


def plan_units(
    *,
    streams: list[str],
    project_ids: list[int],
    states: Mapping[UnitKey, UnitState],
    targets: RunTargets | None,
    coverage: Coverage | None,
    full_refresh: bool,
    now: datetime,
) -> list[PlannedUnit]:
    """The units of a run in the order they are started."""
    planned = _targets(streams, states, targets)
    if targets is not None and not targets.whole:
        return planned
    taken = {(u.stream, u.project_id) for u in planned}
    covers = coverage if (coverage is not None and not full_refresh) else None
    # A continuation reads only what the run it continues did not reach.
    staler_than = targets.only_staler_than if targets is not None else None
    rest: list[PlannedUnit] = []
    limited: list[PlannedUnit] = []
    covered_units = 0
    for name in streams:
        stream = STREAMS[name]
        if name == "projects":
            continue  # the project list is read by every run that is not only targeted
        for project_id in [None] if stream.scope == Scope.company else project_ids:
            if (name, project_id) in taken:
                continue
            until = known_until(stream, states.get((name, project_id)))
            if staler_than is not None and until is not None and until >= staler_than:
                continue
            since = covers.since.get(name) if covers is not None else None
            if covers is None or since is None:
                rest.append(PlannedUnit(name, project_id, known_until=until))
                continue
            covered_units += 1
            unit = PlannedUnit(name, project_id, reconcile=True, known_until=until)
            repair = covers.repair_from
            if until is None or until < since or (repair is not None and until < repair):
                rest.append(unit)  # never read, or a gap events cannot fill: read it now
            elif until <= now - covers.interval:
                limited.append(unit)
    if covers is not None and limited:
        limited.sort(key=_staleness)
        rest.extend(limited[: reconcile_quota(covered_units, covers)])
    rest.sort(key=_staleness)
    return planned + rest


def _targets(
    streams: list[str], states: Mapping[UnitKey, UnitState], targets: RunTargets | None
) -> list[PlannedUnit]:
    """Target units of selected streams, oldest event first (projects are read apart)."""
    if targets is None:
        return []
    planned: list[PlannedUnit] = []
    seen: set[UnitKey] = set()
    ordered = sorted(
        targets.units, key=lambda u: (u.first_event_at is None, u.first_event_at or EARLIEST)
    )
    for unit in ordered:
        stream = STREAMS.get(unit.stream)
        if stream is None or unit.stream not in streams or unit.stream == "projects":
            continue
        project_id = None if stream.scope == Scope.company else unit.project_id
        if stream.scope == Scope.project and project_id is None:
            continue
        if (unit.stream, project_id) in seen:
            continue
        seen.add((unit.stream, project_id))
        until = known_until(stream, states.get((unit.stream, project_id)))
        planned.append(PlannedUnit(unit.stream, project_id, target=True, known_until=until))
    return planned


def _staleness(unit: PlannedUnit) -> tuple[bool, datetime]:
    return (unit.known_until is not None, unit.known_until or EARLIEST)
