"""The streams the simulator serves: scope, delete behaviour, filters, and their generator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from procore_sim.config import SimulatorConfig
from procore_sim.generate import company, field, financial, project
from procore_sim.generate.common import GenContext, Record

Scope = Literal["company", "project"]
# How a deletion shows in Procore:
#   hard: the record is gone;  rfi: `deleted`/`deleted_at` set, moved to the recycle bin;
#   recycle_bin: `deleted_at` set, served by a recycle-bin endpoint;
#   include_deleted: `deleted_at` set, listed with filters[include_deleted]=only|with;
#   deleted_at_filter: `deleted_at` set, listed with filters[deleted_at]=<range>;
#   documents: `is_in_recycle_bin` set, listed with filters[is_in_recycle_bin]=true.
DeleteMode = Literal[
    "hard", "rfi", "recycle_bin", "include_deleted", "deleted_at_filter", "documents"
]
SortStyle = Literal["none", "sort", "rfi"]


def _per_scope(config: SimulatorConfig) -> int:
    return config.records


def _project_count(config: SimulatorConfig) -> int:
    return config.projects


@dataclass(frozen=True)
class StreamSpec:
    """One stream: its scope, how deletes look, which filters it honours, how it is generated."""

    name: str
    scope: Scope
    generate: Callable[[GenContext], list[Record]]
    delete_mode: DeleteMode = "hard"
    updated_filter: bool = True
    sort: SortStyle = "sort"
    count: Callable[[SimulatorConfig], int] = _per_scope
    parent: str | None = None

    @property
    def soft_delete(self) -> bool:
        """Whether deleted records stay visible somewhere (recycle bin, filters, flags)."""
        return self.delete_mode != "hard"


def _stream_list() -> list[StreamSpec]:
    return [
        StreamSpec("projects", "company", company.projects, count=_project_count),
        StreamSpec("users", "company", company.users),
        StreamSpec("vendors", "company", company.vendors),
        StreamSpec("rfis", "project", project.rfis, delete_mode="rfi", sort="rfi"),
        StreamSpec("submittals", "project", project.submittals, delete_mode="recycle_bin"),
        StreamSpec("observations", "project", project.observations, delete_mode="recycle_bin"),
        StreamSpec("punch_items", "project", project.punch_items, delete_mode="recycle_bin"),
        StreamSpec("change_events", "project", financial.change_events,
                   delete_mode="include_deleted"),
        StreamSpec("work_order_contracts", "project", financial.work_order_contracts,
                   delete_mode="include_deleted"),
        StreamSpec("purchase_order_contracts", "project", financial.purchase_order_contracts,
                   delete_mode="include_deleted"),
        StreamSpec("prime_contracts", "project", financial.prime_contracts),
        StreamSpec("budget_views", "project", financial.budget_views, updated_filter=False,
                   sort="none"),
        StreamSpec("budget_detail_rows", "project", financial.budget_detail_rows,
                   updated_filter=False, sort="none", parent="budget_views"),
        StreamSpec("cost_codes", "project", financial.cost_codes, updated_filter=False,
                   sort="none"),
        StreamSpec("documents", "project", field.documents, delete_mode="documents"),
        StreamSpec("checklists", "project", field.checklists, delete_mode="recycle_bin"),
        StreamSpec("timesheets", "project", field.timesheets, delete_mode="deleted_at_filter"),
        StreamSpec("daily_manpower_logs", "project", field.daily_manpower_logs,
                   updated_filter=False, sort="none"),
    ]


STREAMS: dict[str, StreamSpec] = {spec.name: spec for spec in _stream_list()}
STREAM_NAMES: tuple[str, ...] = tuple(STREAMS)


def stream_spec(name: str) -> StreamSpec:
    """The spec of a stream; KeyError for an unknown name."""
    return STREAMS[name]
