"""Fast JSON (orjson) for the hot path (Procore pages in, destination rows out), with the
standard library as the fallback for what orjson refuses (integers beyond 64 bits)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | str) -> Any:
    """Parses JSON; raises ValueError for invalid input."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # valid JSON orjson will not take (e.g. a 2**70 integer)


def dumps(value: Any) -> str:
    """Compact JSON text, key order kept, non-ASCII characters kept as they are."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
