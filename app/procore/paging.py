"""Pages of a Procore list: the Page type and how the next page is found."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from app.core import json_codec
from app.procore.errors import ProcoreError, request_id_of

# Query parameters of a call: a name with a value, or with several (repeated in the query).
Params = Mapping[str, str | int | Sequence[str]]


def query_items(params: Params | None) -> list[tuple[str, str | int | float | bool | None]]:
    """The parameters as httpx's query items (several values repeat the name)."""
    items: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in (params or {}).items():
        if isinstance(value, str | int):
            items.append((name, str(value)))
        else:
            items.extend((name, str(v)) for v in value)
    return items


@dataclass(frozen=True)
class Page:
    """One page of a listing: its records, its number, the next page's number and the total."""

    records: list[dict[str, Any]]
    page: int
    next_page: int | None
    total: int | None
    per_page: int | None = None  # the page size this page was read with


def page_number_of(url: str) -> int | None:
    """Returns the ``page`` query parameter of a URL, if it is a positive integer."""
    values = parse_qs(urlsplit(url).query).get("page")
    if not values:
        return None
    try:
        number = int(values[0])
    except ValueError:
        return None
    return number if number > 0 else None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def records_of(body: Any) -> tuple[list[dict[str, Any]], bool]:
    """Returns the records of a list answer and whether the answer was a list at all.

    Lists are the usual shape; ``{"data": [...]}`` is the v2 envelope; any other object is a
    single record from an endpoint that does not page; ``null`` is an empty answer.
    """
    if isinstance(body, list):
        return [item for item in body if isinstance(item, dict)], True
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, list):
            return [item for item in data if isinstance(item, dict)], True
        return [body], False
    return [], False


def next_page_number(
    page: int, record_count: int, response: httpx.Response, requested_per_page: int
) -> tuple[int | None, int | None]:
    """Returns (next page or None, total or None) from the ``Link``, ``Total`` and ``Per-Page``
    headers (``Link`` parsed by httpx's ``Response.links``)."""
    headers = response.headers
    total = _int_header(headers, "total")
    if record_count == 0:
        return None, total
    if headers.get("link"):
        next_url = response.links.get("next", {}).get("url")
        if next_url is None:
            return None, total
        number = page_number_of(next_url)
        if number is None or number <= page:
            number = page + 1
        return number, total
    per_page = _int_header(headers, "per-page") or requested_per_page
    if total is not None and per_page > 0:
        last_page = math.ceil(total / per_page)
        return (page + 1 if page < last_page else None), total
    # Nothing to go by: a full page suggests more may follow.
    return (page + 1 if record_count >= per_page else None), total


def smaller_page(page: int, per_page: int, *, floor: int) -> tuple[int, int] | None:
    """The same position in the listing read with half the page size: Procore answers 408 to a
    request that takes too long and advises smaller pages, never a bigger read
    (api_essentials/error_reference.md). None when the size cannot shrink below `floor`."""
    # A divisor of the current size keeps every page boundary, so the next page starts exactly
    # at the record the refused page would have started with.
    for smaller in range(per_page // 2, floor - 1, -1):
        if per_page % smaller == 0:
            return (page - 1) * (per_page // smaller) + 1, smaller
    return None


def decode_json(response: httpx.Response, path: str) -> Any:
    """The JSON body of a Procore answer (None when empty); a body that is not JSON is an error."""
    if not response.content:
        return None
    try:
        return json_codec.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise ProcoreError(
            "Procore answered with a body that is not JSON",
            status=response.status_code,
            request_id=request_id_of(response),
            path=path,
        ) from None


def _retrieve(task: asyncio.Task[Page]) -> None:
    """Marks a read-ahead's failure as seen: it is raised to the caller when it asks for the
    page, or dropped with the listing it belonged to (no "exception never retrieved")."""
    if not task.cancelled():
        task.exception()


async def read_ahead(
    read: Callable[[int, int], Coroutine[Any, Any, Page]],
    first: int,
    size: int,
    worth_it: Callable[[], bool],
) -> AsyncIterator[Page]:
    """Yields a listing's pages from `first`, reading the next one while the caller works on
    the current one, from the third page read on and only while `worth_it()`; at most two
    pages are held. A caller that stops early cancels the read-ahead."""
    current = await read(first, size)
    ahead: asyncio.Task[Page] | None = None
    try:
        while True:
            if current.next_page is not None and current.page > first and worth_it():
                ahead = asyncio.create_task(read(current.next_page, current.per_page or size))
                ahead.add_done_callback(_retrieve)
            yield current
            if ahead is not None:
                current, ahead = await ahead, None
            elif current.next_page is not None:  # not read ahead
                current = await read(current.next_page, current.per_page or size)
            else:
                return
    finally:
        if ahead is not None and not ahead.done():
            ahead.cancel()
