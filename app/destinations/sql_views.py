"""Typed views over the SQL destination's tables (`?typed_views=true` on a sqlite: or
postgresql: URL): per stream, `<prefix><stream>_typed` exposes the contract's columns and the
stream's commonly used record fields as typed columns, read from the `data` column.

The fields follow Procore's published models (the REST API reference of each endpoint in
SPEC section 5; procore/documentation). A value that is not of the column's type (a text
where a number is expected, an impossible date) reads as NULL, never as an error, so a
surprise in one record cannot break a customer's query. The view is created when the stream's
table is first written in a process and replaced then, so a new connector version's fields
appear after its first run.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from app.core.logging import get_logger

log = get_logger(__name__)

VIEW_SUFFIX = "_typed"
MAX_IDENTIFIER_LENGTH = 63
_CONTRACT = "company_id, id, project_id, updated_at, deleted_at, synced_at"
_PEOPLE = ("created_by.id:bigint", "created_by.name:text")
_COMMITMENT = (
    "number:text",
    "title:text",
    "status:text",
    "executed:boolean",
    "grand_total:numeric",
    "revised_contract:numeric",
    "contract_date:date",
    "vendor.id:bigint",
    "vendor.name:text",
    "created_at:timestamp",
)

# Per stream: "path:type", the path dotted into nested objects; the column is the path with
# "." replaced by "_". Types: text, bigint, numeric, boolean, date, timestamp.
VIEW_FIELDS: dict[str, tuple[str, ...]] = {
    "projects": (
        "name:text",
        "project_number:text",
        "city:text",
        "state_code:text",
        "country_code:text",
        "stage:text",
        "active:boolean",
        "start_date:date",
        "completion_date:date",
        "total_value:numeric",
        "created_at:timestamp",
    ),
    "users": (
        "name:text",
        "email_address:text",
        "job_title:text",
        "is_active:boolean",
        "is_employee:boolean",
        "vendor.id:bigint",
        "last_login_at:timestamp",
        "created_at:timestamp",
    ),
    "vendors": ("name:text", "trade_name:text", "email_address:text", "is_active:boolean"),
    "rfis": (
        "number:text",
        "full_number:text",
        "subject:text",
        "status:text",
        "due_date:date",
        "initiated_at:timestamp",
        "time_resolved:timestamp",
        "private:boolean",
        "rfi_manager.id:bigint",
        "rfi_manager.name:text",
        "responsible_contractor.name:text",
        "cost_impact.status:text",
        "schedule_impact.status:text",
        "location.name:text",
        "created_at:timestamp",
        *_PEOPLE,
    ),
    "submittals": (
        "number:text",
        "title:text",
        "status.name:text",
        "type.name:text",
        "due_date:date",
        "received_date:date",
        "issue_date:date",
        "responsible_contractor.name:text",
        "submittal_manager.name:text",
        "created_at:timestamp",
    ),
    "observations": (
        "number:text",
        "name:text",
        "status:text",
        "priority:text",
        "type.name:text",
        "assignee.name:text",
        "due_date:date",
        "closed_at:timestamp",
        "created_at:timestamp",
    ),
    "punch_items": (
        "name:text",
        "status:text",
        "workflow_status:text",
        "priority:text",
        "due_date:date",
        "punch_item_manager.name:text",
        "location.name:text",
        "closed_at:timestamp",
        "created_at:timestamp",
    ),
    "change_events": (
        "number:text",
        "title:text",
        "status:text",
        "event_scope:text",
        "event_type:text",
        "change_reason:text",
        "created_at:timestamp",
    ),
    "work_order_contracts": _COMMITMENT,
    "purchase_order_contracts": _COMMITMENT,
    "prime_contracts": (
        "number:text",
        "title:text",
        "status:text",
        "executed:boolean",
        "grand_total:numeric",
        "revised_contract_amount:numeric",
        "start_date:date",
        "estimated_completion_date:date",
        "created_at:timestamp",
    ),
    "budget_detail_rows": (
        "budget_view_id:bigint",
        "cost_code:text",
        "category:text",
        "original_budget_amount:numeric",
        "revised_budget:numeric",
        "committed_costs:numeric",
        "direct_costs:numeric",
        "projected_costs:numeric",
        "forecast_to_complete:numeric",
        "estimated_cost_at_completion:numeric",
    ),
    "cost_codes": ("name:text", "code:text", "full_code:text", "budgeted:boolean"),
    "documents": (
        "name:text",
        "name_with_path:text",
        "document_type:text",
        "file_type:text",
        "created_at:timestamp",
    ),
    "checklists": (
        "name:text",
        "status:text",
        "inspection_date:date",
        "due_date:date",
        "closed_at:timestamp",
        "created_at:timestamp",
    ),
    "timesheets": ("number:text", "date:date", "status:text", "created_at:timestamp"),
    "daily_manpower_logs": (
        "date:date",
        "num_workers:numeric",
        "num_hours:numeric",
        "man_hours:numeric",
        "vendor.name:text",
        "created_at:timestamp",
    ),
}

_DATE = r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_TIMESTAMP = (
    r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]"
    r"(:[0-5][0-9](\.[0-9]{1,9})?)?(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$"
)


def view_name(table: str) -> str | None:
    """The typed view's name for a table, or None when it would be too long."""
    name = table + VIEW_SUFFIX
    return name if len(name) <= MAX_IDENTIFIER_LENGTH else None


def columns(stream: str) -> list[tuple[list[str], str, str]]:
    """(path, column name, type) of the stream's typed fields."""
    found = []
    for spec in VIEW_FIELDS.get(stream, ()):
        path, _, kind = spec.partition(":")
        found.append((path.split("."), path.replace(".", "_"), kind))
    return found


def _postgres(path: list[str], kind: str) -> str:
    node = "data #> '{" + ",".join(path) + "}'"
    raw = "data #>> '{" + ",".join(path) + "}'"
    if kind == "text":
        return f"CASE WHEN jsonb_typeof({node}) = 'string' THEN {raw} END"
    if kind == "boolean":
        return f"CASE WHEN jsonb_typeof({node}) = 'boolean' THEN ({raw})::boolean END"
    if kind in ("bigint", "numeric"):
        pattern = r"^-?[0-9]{1,18}$" if kind == "bigint" else r"^-?[0-9.eE+-]+$"
        return (
            f"CASE WHEN jsonb_typeof({node}) = 'number' AND {raw} ~ '{pattern}' "
            f"THEN ({raw})::{kind} END"
        )
    sql_type = "date" if kind == "date" else "timestamptz"
    pattern = _DATE if kind == "date" else _TIMESTAMP
    # The shape is checked first, then that the day exists in its month (2024-02-30 does
    # not); nested CASEs keep PostgreSQL from casting before the checks passed.
    last_day = (
        f"extract(day from make_date(substr({raw}, 1, 4)::int, substr({raw}, 6, 2)::int, 1) "
        "+ interval '1 month - 1 day')"
    )
    return (
        f"CASE WHEN jsonb_typeof({node}) = 'string' AND {raw} ~ '{pattern}' THEN "
        f"CASE WHEN substr({raw}, 9, 2)::int <= {last_day} THEN ({raw})::{sql_type} END END"
    )


def _sqlite(path: list[str], kind: str) -> str:
    where = "'$." + ".".join(f'"{part}"' for part in path) + "'"
    value = f"json_extract(data, {where})"
    kind_of = f"json_type(data, {where})"
    if kind == "text":
        return f"CASE WHEN {kind_of} = 'text' THEN {value} END"
    if kind == "boolean":
        return f"CASE WHEN {kind_of} IN ('true', 'false') THEN {value} END"
    if kind == "bigint":
        return f"CASE WHEN {kind_of} = 'integer' THEN {value} END"
    if kind == "numeric":
        return f"CASE WHEN {kind_of} IN ('integer', 'real') THEN {value} END"
    # SQLite keeps 2024-02-30 as written; a '+0 days' normalises it, so compare.
    day = f"substr({value}, 1, 10)"
    exists = f"{kind_of} = 'text' AND date({day}, '+0 days') = {day}"
    if kind == "date":
        return f"CASE WHEN {exists} AND length({value}) = 10 THEN {value} END"
    # datetime() reads ISO 8601 with a zone and answers UTC text, as the contract's columns.
    return f"CASE WHEN {exists} THEN datetime({value}) END"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def view_sql(dialect: str, schema: str | None, table: str, stream: str) -> str:
    """The SELECT of the stream's typed view."""
    fields = [
        (_postgres(path, kind) if dialect == "postgresql" else _sqlite(path, kind))
        + f" AS {_quote(column)}"
        for path, column, kind in columns(stream)
    ]
    source = _quote(table) if schema is None else f"{_quote(schema)}.{_quote(table)}"
    return f"SELECT {', '.join([_CONTRACT, *fields])} FROM {source}"  # noqa: S608


def create_typed_view(conn: Connection, schema: str | None, table: str, stream: str) -> None:
    """Creates or replaces the stream's typed view (in the caller's transaction)."""
    name = view_name(table)
    if name is None:
        log.warning("typed_view_skipped", table=table, reason="name longer than 63 characters")
        return
    dialect = conn.dialect.name
    qualified = _quote(name) if schema is None else f"{_quote(schema)}.{_quote(name)}"
    select = view_sql(dialect, schema, table, stream)
    # Replaced by dropping: CREATE OR REPLACE VIEW cannot remove or reorder columns.
    conn.execute(text(f"DROP VIEW IF EXISTS {qualified}"))
    conn.execute(text(f"CREATE VIEW {qualified} AS {select}"))
