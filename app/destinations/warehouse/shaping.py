"""Turns a batch of records into typed tables: one row per record, child tables for lists.

dlt can normalise nested Python dicts itself, but at about 1,900 rows/s; given Arrow tables it
loads some 40,000 rows/s (docs/decisions/0016-warehouses.md). So the shaping is done here, by
the rules dlt's own normaliser follows, and dlt gets Arrow tables:

- the contract's columns first (`company_id`, `id`, `project_id`, `updated_at`, `deleted_at`,
  `synced_at`), typed, then `data`: the record exactly as Procore sent it, as JSON;
- each top-level field of the record as a typed column (bool, bigint, double, text, and text
  that is all ISO 8601 timestamps or dates as timestamp or date); nested objects flattened
  into `parent__child` columns (to MAX_FLATTEN_DEPTH, deeper as JSON text);
- each list as a child table `<table>__<field>` keyed by the parent's key, `_parent_<key>`,
  and `_position`; a list item's own lists stay JSON text in the child row;
- a field whose type differs from its column in the warehouse goes to a variant column
  `<field>__v_<type>` (dlt's convention), and the change is noted on the run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from app.core import json_codec
from app.destinations.records import DestinationRecord

MAX_FLATTEN_DEPTH = 3
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
STANDARD_COLUMNS = ("project_id", "updated_at", "deleted_at", "synced_at")
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOT_IDENTIFIER = re.compile(r"[^a-z0-9_]+")

# Existing column types of a table in the warehouse: table name -> column -> dlt data type.
ExistingTypes = Callable[[str], dict[str, str]]


def key_columns(stream: str) -> tuple[str, ...]:
    """The columns that identify a row of the stream (merge key of its table).

    Every stream is keyed by (company_id, id) today. A stream whose ids repeat under another
    parent (budget_detail_rows: one line item per budget view) adds that column here, e.g.
    `("company_id", "parent_id", "id")`, once DestinationRecord carries it: rows, child
    tables, deletes and purge all take their key from this function.
    """
    del stream
    return ("company_id", "id")


@lru_cache(maxsize=4096)
def column_name(key: str) -> str:
    """A field name as a column name: snake_case letters, digits and underscores."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()
    text = _NOT_IDENTIFIER.sub("_", text).strip("_") or "_"
    return f"_{text}" if text[0].isdigit() else text


@dataclass(slots=True)
class ShapedTable:
    """Rows of one table ready for Arrow, with their keys and column types."""

    name: str
    primary_key: tuple[str, ...]
    merge_key: tuple[str, ...] = ()
    rows: list[dict[str, Any]] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    # For child tables: the parents of this batch (their key values, in key order).
    parents: set[tuple[Any, ...]] = field(default_factory=set)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "bigint" if INT64_MIN <= value <= INT64_MAX else "big"
    if isinstance(value, float):
        return "double"
    return "text"


def _parse_timestamp(text: str) -> datetime | None:
    if not _TIMESTAMP.fullmatch(text):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_date(text: str) -> date | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def infer_type(values: Iterable[Any]) -> str | None:
    """The dlt data type that holds every non-null value, or None if all are null."""
    kinds = {_kind(value) for value in values if value is not None}
    if not kinds:
        return None
    if kinds == {"bool"}:
        return "bool"
    if kinds == {"bigint"}:
        return "bigint"
    if kinds <= {"bigint", "double"}:
        return "double"
    if kinds == {"text"}:
        texts = [value for value in values if value is not None]
        if all(_parse_timestamp(value) is not None for value in texts):
            return "timestamp"
        if all(_parse_date(value) is not None for value in texts):
            return "date"
    return "text"


def convert(value: Any, data_type: str) -> Any:
    """The value as the column's type (inferred to fit, so nothing is lost)."""
    if value is None:
        return None
    if data_type == "double":
        return float(value)
    if data_type == "timestamp":
        return _parse_timestamp(value)
    if data_type == "date":
        return _parse_date(value)
    if data_type == "text" and not isinstance(value, str):
        return json_codec.dumps(value)
    return value


def reconcile(old: str | None, new: str) -> str:
    """The type to write when the warehouse has `old` and the batch `new` (see variant)."""
    if old is None or old == new:
        return new
    if (old, new) == ("double", "bigint"):
        return "double"
    if old == "text":
        return "text"
    return ""  # a variant column is needed


def _flatten(
    data: dict[str, Any],
    prefix: str,
    depth: int,
    row: dict[str, Any],
    lists: dict[str, list[Any]] | None,
    reserved: frozenset[str],
) -> None:
    for key, value in data.items():
        name = column_name(str(key))
        full = f"{prefix}__{name}" if prefix else name
        if full in reserved or full in row:
            continue  # the contract's own columns win; the field is still in `data`
        if isinstance(value, dict):
            if depth < MAX_FLATTEN_DEPTH:
                _flatten(value, full, depth + 1, row, lists, reserved)
            elif value:
                row[full] = json_codec.dumps(value)
        elif isinstance(value, list):
            if lists is not None:
                lists[full] = value
            else:
                row[full] = json_codec.dumps(value)
        else:
            row[full] = value


def _contract_types(key: Sequence[str]) -> dict[str, str]:
    types = dict.fromkeys(key, "bigint")
    types.update(
        project_id="bigint",
        updated_at="timestamp",
        deleted_at="timestamp",
        synced_at="timestamp",
        data="json",
    )
    return types


def shape_stream(
    table: str,
    stream: str,
    company_id: int,
    records: Sequence[DestinationRecord],
    synced_at: datetime,
    existing: ExistingTypes,
) -> tuple[list[ShapedTable], list[str]]:
    """Returns the stream's table and child tables for these records, and notes on types."""
    key = key_columns(stream)
    parent = ShapedTable(table, key, key, types=_contract_types(key))
    reserved = frozenset(parent.types)
    children: dict[str, ShapedTable] = {}
    parent_key = tuple(f"_parent_{name}" for name in key)
    for record in records:
        keys = tuple(company_id if name == "company_id" else getattr(record, name) for name in key)
        row: dict[str, Any] = dict(zip(key, keys, strict=True))
        row.update(
            project_id=record.project_id,
            updated_at=record.updated_at,
            deleted_at=record.deleted_at,
            synced_at=synced_at,
            data=json_codec.dumps(record.data),
        )
        lists: dict[str, list[Any]] = {}
        _flatten(record.data, "", 1, row, lists, reserved)
        parent.rows.append(row)
        for name, items in lists.items():
            child_name = f"{table}__{name}"
            child = children.get(child_name)
            if child is None:
                child = ShapedTable(
                    child_name,
                    ("company_id", *parent_key[1:], "_position"),
                    ("company_id", *parent_key[1:]),
                    types=dict.fromkeys(("company_id", *parent_key[1:], "_position"), "bigint")
                    | {"synced_at": "timestamp"},
                )
                children[child_name] = child
            child.parents.add(keys)
            base = dict(zip(("company_id", *parent_key[1:]), keys, strict=True))
            for position, item in enumerate(items):
                child_row = base | {"_position": position, "synced_at": synced_at}
                if isinstance(item, dict):
                    _flatten(item, "", 1, child_row, None, frozenset(child.types))
                else:
                    scalar = not isinstance(item, list)
                    child_row["value"] = item if scalar else json_codec.dumps(item)
                child.rows.append(child_row)
    tables = [parent, *children.values()]
    notes: list[str] = []
    for shaped in tables:
        notes.extend(_type_columns(shaped, existing(shaped.name)))
    return tables, notes


def _type_columns(shaped: ShapedTable, existing: dict[str, str]) -> list[str]:
    """Types every data column of the table, moving values that cannot go into their existing
    column to a variant column; returns a note for each such move."""
    notes: list[str] = []
    fixed = set(shaped.types)
    names: dict[str, None] = {}
    for row in shaped.rows:
        names.update(dict.fromkeys(row))
    for name in names:
        if name in fixed:
            continue
        values = [row.get(name) for row in shaped.rows]
        new = infer_type(values)
        if new is None:
            for row in shaped.rows:
                row.pop(name, None)  # all null: nothing to type yet; the value is in `data`
            continue
        chosen = reconcile(existing.get(name), new)
        target = name
        if not chosen:
            target, chosen = f"{name}__v_{new}", new
            notes.append(
                f"{shaped.name}.{name} is {existing[name]} in the warehouse but {new} in this "
                f"batch; kept in {target}"
            )
        shaped.types[target] = chosen
        for row in shaped.rows:
            value = row.pop(name, None)
            row[target] = convert(value, chosen)
    return notes
