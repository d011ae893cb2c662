"""Which records a destination can store faithfully, and the text a quarantined one is kept as.

A record is quarantined (kept aside with its reason, never failing the batch) when it holds:
- a lone surrogate in a string or key: not Unicode, so no UTF-8 text or JSON reader takes it;
- a number JSON cannot carry (NaN, or 1e400 which Procore's page parses to infinity);
- nesting deeper than MAX_NESTING levels (no Procore record comes near; it guards stacks);
- U+0000 in a string, where the destination cannot store it (PostgreSQL jsonb);
- an id or project id beyond 64 bits, where the column is a 64-bit integer (SQL, Parquet).
Everything else is stored exactly as received (ADR 0011).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from app.destinations.base import QuarantinedRecord
from app.destinations.records import DestinationRecord

MAX_NESTING = 128
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
QUARANTINE_DEPTH = 200  # deeper parts of a quarantined record are cut, with a marker
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class StorageLimits:
    """What one destination cannot hold beyond what JSON itself cannot."""

    nul_in_strings: bool = True
    int64_ids: bool = False


JSON_TEXT = StorageLimits()  # JSON-lines files, HTTP bodies, SQLite's JSON text
POSTGRESQL = StorageLimits(nul_in_strings=False, int64_ids=True)
SQLITE = StorageLimits(int64_ids=True)
PARQUET = StorageLimits(int64_ids=True)


def _string_problem(text: str, limits: StorageLimits) -> str | None:
    if not limits.nul_in_strings and "\x00" in text:
        return "a string contains U+0000, which PostgreSQL jsonb cannot store"
    if not text.isascii() and _SURROGATE.search(text):
        return "a string contains a lone surrogate (not valid Unicode)"
    return None


def _scalar_problem(value: Any, limits: StorageLimits) -> str | None:
    if isinstance(value, str):
        return _string_problem(value, limits)
    if isinstance(value, float) and not math.isfinite(value):
        return "a number is NaN or beyond the range of JSON numbers (e.g. 1e400)"
    return None


_PLAIN = frozenset({str, int, bool, type(None)})


def _surely_fine(data: Any, limits: StorageLimits) -> bool:
    """A fast proof that `data` has no problem (False means: walk it to find out).

    orjson refuses lone surrogates (in strings and keys) and integers beyond 64 bits, escapes
    U+0000 as `\\u0000`, and has no bracket it does not write; fewer brackets than
    MAX_NESTING bounds the depth. The only thing left to look for is a non-finite float,
    which orjson would write as null: one pass over the values, by exact type.
    """
    try:
        text = orjson.dumps(data)
    except orjson.JSONEncodeError:
        return False
    if not limits.nul_in_strings and b"\\u0000" in text:
        return False
    if text.count(b"{") + text.count(b"[") > MAX_NESTING:
        return False
    stack = [data]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            values: Iterable[Any] = item.values()
        elif kind is list:
            values = item
        elif kind is float:
            if not math.isfinite(item):
                return False
            continue
        elif kind in _PLAIN:
            continue
        else:
            return False  # a subclass or another type: let the full walk judge it
        for value in values:
            kind = type(value)
            if kind in _PLAIN:
                continue
            stack.append(value)
    return True


def data_problem(data: Any, limits: StorageLimits) -> str | None:
    """Returns why the record's data cannot be stored faithfully, or None."""
    if _surely_fine(data, limits):
        return None
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
            for key in item:
                problem = _string_problem(key, limits) if isinstance(key, str) else None
                if problem:
                    return problem.replace("a string", "a key")
        elif isinstance(item, list):
            children = item
        else:
            problem = _scalar_problem(item, limits)
            if problem:
                return problem
            continue
        if depth > MAX_NESTING:
            return f"nested deeper than {MAX_NESTING} levels"
        stack.extend((child, depth + 1) for child in children)
    return None


def record_problem(record: DestinationRecord, limits: StorageLimits) -> str | None:
    """Returns why the record cannot be stored faithfully by such a destination, or None."""
    if limits.int64_ids:
        for name, value in (("id", record.id), ("project_id", record.project_id)):
            if value is not None and not INT64_MIN <= value <= INT64_MAX:
                return f"{name} {value} does not fit a 64-bit integer column"
    return data_problem(record.data, limits)


def screen(
    records: Iterable[DestinationRecord], limits: StorageLimits
) -> tuple[list[DestinationRecord], list[tuple[DestinationRecord, str]]]:
    """Splits a batch into the records to store and the quarantined ones with their reasons."""
    kept: list[DestinationRecord] = []
    quarantined: list[tuple[DestinationRecord, str]] = []
    for record in records:
        problem = record_problem(record, limits)
        if problem is None:
            kept.append(record)
        else:
            quarantined.append((record, problem))
    return kept, quarantined


def notes(quarantined: Iterable[tuple[DestinationRecord, str]]) -> tuple[QuarantinedRecord, ...]:
    """Returns the (id, reason) pairs a write reports for its quarantined records."""
    return tuple(QuarantinedRecord(record.id, reason) for record, reason in quarantined)


def _lenient(value: Any, depth: int) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value).replace("inf", "Infinity").replace("nan", "NaN")
    if not isinstance(value, dict | list):
        return value
    if depth >= QUARANTINE_DEPTH:
        return f"<cut: nested deeper than {QUARANTINE_DEPTH} levels>"
    if isinstance(value, list):
        return [_lenient(item, depth + 1) for item in value]
    return {key: _lenient(item, depth + 1) for key, item in value.items()}


def quarantine_text(data: Any) -> str:
    """Returns the record as ASCII JSON text that any store can keep.

    U+0000 and lone surrogates become `\\u` escapes, non-finite numbers the strings
    "Infinity", "-Infinity" or "NaN", and parts nested deeper than QUARANTINE_DEPTH a marker.
    """
    return json.dumps(_lenient(data, 0), ensure_ascii=True, allow_nan=False, separators=(",", ":"))
