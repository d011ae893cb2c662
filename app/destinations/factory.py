"""Builds the destination a destination URL names."""

from __future__ import annotations

import httpx

from app.destinations.base import Destination
from app.destinations.urls import FileTarget, HTTPTarget, SQLTarget, parse_destination_url


def create_destination(
    url: str,
    *,
    http: httpx.AsyncClient | None = None,
    signing_secret: str | None = None,
    table_prefix: str = "",
) -> Destination:
    """Returns an unopened destination for the URL; raises InvalidDestinationURL if unusable."""
    target = parse_destination_url(url)
    if isinstance(target, SQLTarget):
        from app.destinations.sql import SQLDestination

        return SQLDestination(target, table_prefix=table_prefix)
    if isinstance(target, FileTarget):
        raise NotImplementedError("file destinations are not built yet")
    if isinstance(target, HTTPTarget):
        raise NotImplementedError("HTTP destinations are not built yet")
    raise AssertionError(f"unhandled destination target {target!r}")  # pragma: no cover
