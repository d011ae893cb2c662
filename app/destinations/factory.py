"""Builds the destination a destination URL names."""

from __future__ import annotations

import httpx

from app.destinations.base import Destination, InvalidDestinationURL
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
        from app.destinations.files import FileDestination

        return FileDestination(target)
    if isinstance(target, HTTPTarget):
        from app.destinations.http import HTTPDestination

        if signing_secret is None:
            raise InvalidDestinationURL(
                "destination_url: an https:// destination needs the installation's signing secret"
            )
        return HTTPDestination(target, signing_secret=signing_secret, http=http)
    raise AssertionError(f"unhandled destination target {target!r}")  # pragma: no cover
