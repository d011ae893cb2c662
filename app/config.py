"""Loading the settings at start-up: core's parsing, then the checks that need a domain's grammar.

`app.core.settings` knows the shape of every variable but none of the domains; the schedule
grammar, the stream catalog and the destination URL rules live in their packages. This module
sits above them all and still fails start-up with one line naming the variable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from app.core.settings import ENV_PREFIX, Settings, SettingsError, read_settings
from app.destinations import validate_destination_url
from app.destinations.policy import policy_from_settings
from app.installations.schedules import parse_schedule
from app.procore.catalog import parse_stream_selection

__all__ = ["Settings", "SettingsError", "check_domain_settings", "load_settings"]


def _fail(field: str, error: ValueError) -> SettingsError:
    message = str(error).removeprefix(f"{field}: ")
    return SettingsError(f"{ENV_PREFIX}{field.upper()}: {message}")


def check_domain_settings(settings: Settings) -> Settings:
    """Checks schedule, streams and destination URL (under the destination policy: allowed
    networks, CONNECTOR_DESTINATION_ROOT, never the service's database); normalises the URL.
    Raises SettingsError."""
    checks: list[tuple[str, Callable[[], Any]]] = [
        ("schedule", lambda: parse_schedule(settings.schedule)),
        ("streams", lambda: parse_stream_selection(settings.streams)),
        (
            "destination_url",
            lambda: validate_destination_url(
                settings.destination_url.get_secret_value(), policy_from_settings(settings)
            ),
        ),
    ]
    for field, check in checks:
        try:
            value = check()
        except ValueError as exc:
            raise _fail(field, exc) from None
        if field == "destination_url":
            settings.destination_url = SecretStr(value)
    return settings


def load_settings(**overrides: Any) -> Settings:
    """Reads and checks the settings once; any problem is one SettingsError line."""
    return check_domain_settings(read_settings(**overrides))
