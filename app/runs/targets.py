"""Targeted work on a run: the (stream, project) units that webhook events ask to be read.

A run without targets is a normal run (every selected stream, every unit). A run with targets
reads those units first, by `filters[updated_at]` since each unit's cursor, and marks the ids
of delete events deleted at once; with `whole` it then goes on like a normal run. The targets
are stored on the run row (`sync_runs.targets`), so a resumed or recovered run still knows them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

EARLIEST = datetime.min.replace(tzinfo=UTC)
# Beyond this many changed ids a unit is read without checking each id afterwards.
MAX_CHECKED_IDS = 2000


def unit_key(stream: str, project_id: int | None) -> str:
    """The key of a (stream, project) unit in stored JSON: `rfis:123`, `users:0`."""
    return f"{stream}:{project_id or 0}"


class TargetUnit(BaseModel):
    """One (stream, project) unit that events touched."""

    stream: str
    project_id: int | None = None
    changed: list[int] = Field(default_factory=list, description="ids created or updated")
    deleted: list[int] = Field(default_factory=list, description="ids deleted")
    first_event_at: datetime | None = None

    @property
    def key(self) -> str:
        """The unit's key (see unit_key)."""
        return unit_key(self.stream, self.project_id)


class RunTargets(BaseModel):
    """What events ask of a run; merged when more events fold into a run still queued."""

    units: list[TargetUnit] = Field(default_factory=list)
    whole: bool = Field(default=False, description="also read every unit, as a normal run")
    everything: bool = Field(
        default=False,
        description="continues a run that read every unit (manual, install): units of streams "
        "webhooks cover are read too, due or not",
    )
    only_staler_than: datetime | None = Field(
        default=None,
        description="a continuation of a run that stopped early: beyond the targets, read only "
        "units known complete before this time (the earlier run's window)",
    )

    @classmethod
    def load(cls, stored: dict[str, Any] | None) -> RunTargets | None:
        """Reads the stored JSON form (None: a normal run)."""
        return None if stored is None else cls.model_validate(stored)

    def dump(self) -> dict[str, Any]:
        """The JSON form stored on the run row."""
        return self.model_dump(mode="json")

    def merge(self, other: RunTargets) -> RunTargets:
        """These targets and another's, unit by unit (ids unioned, earliest event kept)."""
        by_key = {unit.key: unit.model_copy(deep=True) for unit in self.units}
        for unit in other.units:
            mine = by_key.get(unit.key)
            if mine is None:
                by_key[unit.key] = unit.model_copy(deep=True)
                continue
            mine.changed = sorted(set(mine.changed) | set(unit.changed))[:MAX_CHECKED_IDS]
            mine.deleted = sorted(set(mine.deleted) | set(unit.deleted))
            stamps = [t for t in (mine.first_event_at, unit.first_event_at) if t is not None]
            mine.first_event_at = min(stamps) if stamps else None
        widest = max(self, other, key=lambda t: t._reach())
        return RunTargets(
            units=list(by_key.values()),
            whole=widest.whole,
            everything=self.everything or other.everything,
            only_staler_than=widest.only_staler_than,
        )

    def _reach(self) -> tuple[int, datetime]:
        """How far beyond its targets a run reads: nothing, units staler than a time, all."""
        if not self.whole:
            return (0, EARLIEST)
        if self.only_staler_than is not None:
            return (1, self.only_staler_than)
        return (2, EARLIEST)
