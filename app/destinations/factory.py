"""Builds the destination a destination URL names, under the service's destination policy."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from app.destinations.base import Destination, InvalidDestinationURL
from app.destinations.policy import DestinationPolicy
from app.destinations.urls import (
    FileTarget,
    HTTPTarget,
    SQLTarget,
    check_policy,
    parse_destination_url,
)
from app.destinations.warehouse.targets import ObjectStoreTarget, WarehouseTarget


def create_destination(
    url: str,
    *,
    policy: DestinationPolicy,
    http: httpx.AsyncClient | None = None,
    signing_secret: str | None = None,
    previous_signing_secrets: Sequence[str] = (),
    table_prefix: str = "",
) -> Destination:
    """Returns an unopened destination for the URL; raises InvalidDestinationURL if unusable.

    The URL as written is checked against the policy here; the resolved address or real path
    is checked again when the destination opens or sends.
    """
    target = parse_destination_url(url)
    check_policy(target, policy)
    if isinstance(target, SQLTarget):
        from app.destinations.sql import SQLDestination

        return SQLDestination(target, policy=policy, table_prefix=table_prefix)
    if isinstance(target, FileTarget):
        from app.destinations.files import FileDestination

        return FileDestination(target, policy=policy)
    if isinstance(target, WarehouseTarget):
        from app.destinations.warehouse.destination import WarehouseDestination

        return WarehouseDestination(target, policy=policy, table_prefix=table_prefix)
    if isinstance(target, ObjectStoreTarget):
        from app.destinations.warehouse.objectstore import ObjectStoreDestination

        return ObjectStoreDestination(target, policy=policy)
    if isinstance(target, HTTPTarget):
        from app.destinations.http import HTTPDestination

        if signing_secret is None:
            raise InvalidDestinationURL(
                "destination_url: an https:// destination needs the installation's signing secret"
            )
        return HTTPDestination(
            target,
            signing_secret=signing_secret,
            previous_secrets=previous_signing_secrets,
            policy=policy,
            http=http,
        )
    raise AssertionError(f"unhandled destination target {target!r}")  # pragma: no cover
