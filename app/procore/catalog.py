"""The stream catalog: every Procore resource the connector syncs, declared once.

Adding a stream is one `Stream(...)` entry in CATALOG. Paths are formatted with
`company_id`, `project_id` and (for child streams) `parent_id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Scope(StrEnum):
    """Where a stream lives: once per company, or once per permitted project."""

    company = "company"
    project = "project"


class Cursor(StrEnum):
    """How a stream is read incrementally."""

    updated_at = "updated_at"  # filters[updated_at]=<from>...<to>
    date_window = "date_window"  # start_date/end_date windows (daily logs)
    none = "none"  # full refresh every run


class Deletes(StrEnum):
    """How deletions in Procore are found."""

    include_deleted = "include_deleted"  # filters[include_deleted]=only
    recycle_bin = "recycle_bin"  # a recycle-bin listing of soft-deleted records
    recycle_filter = "recycle_filter"  # the listing itself with filters[is_in_recycle_bin]=true
    deleted_at_filter = "deleted_at_filter"  # the listing with filters[deleted_at]=<range>
    id_diff = "id_diff"  # ids missing from a complete full listing (nothing else exists)
    none = "none"


@dataclass(frozen=True, slots=True)
class Stream:
    """One syncable resource."""

    name: str
    path: str
    scope: Scope
    cursor: Cursor = Cursor.updated_at
    deletes: Deletes = Deletes.id_diff
    params: dict[str, str] = field(default_factory=dict)
    parent: str | None = None
    recycle_bin_path: str | None = None
    # Whether the delete feed takes filters[updated_at] (documented for some feeds only).
    delete_feed_filtered: bool = True
    # Further listings whose records belong to the stream (e.g. inactive users).
    extra_paths: tuple[str, ...] = ()
    # The endpoint's documented maximum page size, if below the client's.
    max_per_page: int | None = None

    def list_path(
        self, *, company_id: int, project_id: int | None, parent_id: int | None = None
    ) -> str:
        """The list endpoint for one company, project and parent record."""
        return self.path.format(company_id=company_id, project_id=project_id, parent_id=parent_id)

    def list_paths(self, *, company_id: int, project_id: int | None) -> list[str]:
        """Every listing of the stream for one company and project: the main one first."""
        return [
            path.format(company_id=company_id, project_id=project_id)
            for path in (self.path, *self.extra_paths)
        ]

    def list_params(self, *, company_id: int, project_id: int | None) -> dict[str, str]:
        """Static query parameters (company_id/project_id filled in)."""
        return {
            key: value.format(company_id=company_id, project_id=project_id)
            for key, value in self.params.items()
        }


_P = {"project_id": "{project_id}"}

# Sources for each choice below: ../shared/reference/procore-api.md sections 6, 7 and 11
# (procore/documentation and Procore's OpenAPI as published through generated SDKs).
CATALOG: tuple[Stream, ...] = (
    Stream(
        "projects",
        "/rest/v1.1/projects",
        Scope.company,
        # Active projects only unless asked: an inactive project keeps its final changes.
        params={"company_id": "{company_id}", "filters[by_status]": "All"},
        deletes=Deletes.none,
        max_per_page=300,  # the endpoint's documented maximum
    ),
    Stream(
        "users",
        "/rest/v1.3/companies/{company_id}/users",
        Scope.company,
        # Deactivation is not deletion: inactive people are listed apart and kept.
        extra_paths=("/rest/v1.0/companies/{company_id}/users/inactive",),
    ),
    Stream(
        "vendors",
        "/rest/v1.0/vendors",
        Scope.company,
        params={"company_id": "{company_id}"},
        extra_paths=("/rest/v1.0/companies/{company_id}/vendors/inactive",),
    ),
    Stream(
        "rfis",
        "/rest/v1.0/projects/{project_id}/rfis",
        Scope.project,
        deletes=Deletes.recycle_bin,
        recycle_bin_path="/rest/v1.0/projects/{project_id}/rfis/recycle_bin",
    ),
    Stream(
        "submittals",
        "/rest/v1.1/projects/{project_id}/submittals",
        Scope.project,
        deletes=Deletes.recycle_bin,
        recycle_bin_path="/rest/v1.1/projects/{project_id}/submittals/recycle_bin",
    ),
    Stream(
        "observations",
        "/rest/v1.0/observations/items",
        Scope.project,
        params=_P,
        deletes=Deletes.recycle_bin,
        recycle_bin_path="/rest/v1.0/projects/{project_id}/recycle_bin/observations/items",
        delete_feed_filtered=False,
    ),
    Stream(
        "punch_items",
        "/rest/v1.1/punch_items",
        Scope.project,
        params=_P,
        deletes=Deletes.recycle_bin,
        recycle_bin_path="/rest/v1.1/punch_items/recycle_bin",
        delete_feed_filtered=False,
    ),
    Stream(
        "change_events",
        "/rest/v1.0/change_events",
        Scope.project,
        params=_P,
        deletes=Deletes.include_deleted,
    ),
    Stream(
        "work_order_contracts",
        "/rest/v1.0/work_order_contracts",
        Scope.project,
        # Procore answers a compact record unless the extended view is asked for.
        params=_P | {"view": "extended"},
        deletes=Deletes.include_deleted,
    ),
    Stream(
        "purchase_order_contracts",
        "/rest/v1.0/purchase_order_contracts",
        Scope.project,
        params=_P | {"view": "extended"},
        deletes=Deletes.include_deleted,
    ),
    Stream("prime_contracts", "/rest/v1.0/prime_contracts", Scope.project, params=_P),
    Stream("budget_views", "/rest/v1.0/budget_views", Scope.project, params=_P, cursor=Cursor.none),
    Stream(
        "budget_detail_rows",
        "/rest/v1.0/budget_views/{parent_id}/detail_rows",
        Scope.project,
        params=_P,
        cursor=Cursor.none,
        parent="budget_views",
    ),
    Stream("cost_codes", "/rest/v1.0/cost_codes", Scope.project, params=_P, cursor=Cursor.none),
    Stream(
        "documents",
        "/rest/v1.0/projects/{project_id}/documents",
        Scope.project,
        deletes=Deletes.recycle_filter,
    ),
    Stream(
        "checklists",
        "/rest/v1.0/projects/{project_id}/checklist/lists",
        Scope.project,
        deletes=Deletes.recycle_bin,
        recycle_bin_path="/rest/v1.0/projects/{project_id}/recycle_bin/checklist/lists",
    ),
    Stream(
        "timesheets",
        "/rest/v1.0/projects/{project_id}/timesheets",
        Scope.project,
        deletes=Deletes.deleted_at_filter,
    ),
    Stream(
        "daily_manpower_logs",
        "/rest/v1.0/projects/{project_id}/manpower_logs",
        Scope.project,
        # Approved logs only unless asked: pending logs are data too.
        params={"filters[status]": "all"},
        cursor=Cursor.date_window,
        deletes=Deletes.none,
    ),
)

STREAMS: dict[str, Stream] = {stream.name: stream for stream in CATALOG}


def parse_stream_selection(value: str) -> list[str]:
    """Turns `all` or a comma list into stream names in catalog order; rejects unknown names."""
    text = value.strip()
    if text == "all" or text == "":
        return [stream.name for stream in CATALOG]
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STREAMS]
    if unknown:
        raise ValueError(
            f"unknown stream name(s) {', '.join(sorted(unknown))}; known: {', '.join(STREAMS)}"
        )
    chosen = set(names)
    # A child stream needs its parent's listing, so the parent is read too (not necessarily stored).
    return [stream.name for stream in CATALOG if stream.name in chosen]
