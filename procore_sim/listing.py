"""List mechanics shared by every endpoint: errors, filters, sorting, paging and Link headers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from procore_sim.store import Stored


class ApiError(Exception):
    """An answer other than 200, rendered as JSON with its status and headers."""

    def __init__(self, status: int, body: Mapping[str, Any],
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = dict(body)
        self.headers = dict(headers or {})


def _moment(text: str, *, end: bool) -> datetime:
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1, microseconds=-1) if end else start
    if len(text) > 19 and text[-6] == " ":
        text = text[:-6] + "+" + text[-5:]  # an unencoded "+HH:MM" reaches us as " HH:MM"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def parse_range(value: str, name: str) -> tuple[float, float]:
    """Parses a Procore range filter "<start>...<end>" (dates or times, quotes allowed)."""
    text = value.strip().strip("\"'")
    start_text, sep, end_text = text.partition("...")
    try:
        if not sep or not start_text or not end_text:
            raise ValueError("not a range")
        start = _moment(start_text, end=False).timestamp()
        finish = _moment(end_text, end=True).timestamp()
    except ValueError:
        raise ApiError(422, {"errors": {name: [
            f"is invalid: expected a range such as 2024-01-01T00:00:00Z...2024-02-01T00:00:00Z,"
            f" got {value!r}"]}}) from None
    if start > finish:
        raise ApiError(422, {"errors": {name: ["range start is after its end"]}})
    return start, finish


def parse_day(value: str, name: str) -> date:
    """Parses a YYYY-MM-DD query parameter."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        message = f"is not a date (YYYY-MM-DD): {value!r}"
        raise ApiError(400, {"errors": {name: [message]}}) from None


def in_range(stamp: float | None, bounds: tuple[float, float]) -> bool:
    """Whether a timestamp lies inside an inclusive range."""
    return stamp is not None and bounds[0] <= stamp <= bounds[1]


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, "")
    if isinstance(value, bool | int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (1, json.dumps(value, sort_keys=True))


def sort_records(records: list[Stored], keys: Sequence[tuple[str, bool]]) -> list[Stored]:
    """Stable multi-key sort; each key is (field, descending). Ties keep id order."""
    out = list(records)
    for field, descending in reversed(keys):

        def value(stored: Stored, name: str = field) -> tuple[int, Any]:
            return _sort_value(stored.data.get(name))

        out.sort(key=value, reverse=descending)
    return out


def sort_keys(params: Mapping[str, str], style: str) -> list[tuple[str, bool]]:
    """Sort keys from `sort=a,-b` or, for RFIs, `sort[attribute]` and `sort[direction]`."""
    if style == "rfi":
        attribute = params.get("sort[attribute]")
        if not attribute:
            return []
        return [(attribute, params.get("sort[direction]", "asc").lower() == "desc")]
    if style == "sort" and params.get("sort"):
        return [(part.lstrip("-"), part.startswith("-"))
                for part in params["sort"].split(",") if part.strip("-")]
    return []


def page_params(params: Mapping[str, str], default_per_page: int,
                max_per_page: int) -> tuple[int, int]:
    """(page, per_page) from the query: 1-based page; per_page capped at max_per_page."""
    def number(name: str, default: int) -> int:
        try:
            return int(params.get(name, default))
        except ValueError:
            raise ApiError(400, {"errors": {name: ["must be an integer"]}}) from None

    page = max(number("page", 1), 1)
    per_page = number("per_page", default_per_page)
    per_page = min(max(per_page, 1), max_per_page)
    return page, per_page


def link_header(base_url: str, query: Iterable[tuple[str, str]], page: int, per_page: int,
                total: int) -> str:
    """Procore's Link header: first, prev, next (not on the last page) and last."""
    kept = [(k, v) for k, v in query if k not in ("page", "per_page")]
    last = max((total + per_page - 1) // per_page, 1)

    def url(number: int) -> str:
        pairs = [*kept, ("page", str(number)), ("per_page", str(per_page))]
        return f"{base_url}?{urlencode(pairs)}"

    links = [f'<{url(1)}>; rel="first"']
    if page > 1:
        links.append(f'<{url(min(page - 1, last))}>; rel="prev"')
    if page < last:
        links.append(f'<{url(page + 1)}>; rel="next"')
    links.append(f'<{url(last)}>; rel="last"')
    return ", ".join(links)


def page_body(records: Sequence[Stored]) -> bytes:
    """The JSON array of a page, joined from each record's cached bytes."""
    return b"[" + b",".join(s.raw for s in records) + b"]"
