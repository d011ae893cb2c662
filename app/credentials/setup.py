"""Building the keyring from the settings at start-up."""

from __future__ import annotations

import os

from app.core.logging import get_logger
from app.core.settings import EncryptionKey, Settings
from app.credentials.crypto import Keyring

log = get_logger(__name__)
_ephemeral: list[EncryptionKey] = []  # one per process: start-up checks and the app share it


def build_keyring(settings: Settings) -> Keyring:
    """The configured keyring; demo and test mode get an ephemeral key when none is set."""
    keys = settings.keyring
    if not keys and not settings.is_production:
        log.warning(
            "no CONNECTOR_ENCRYPTION_KEYS set: using an ephemeral key (demo/test mode only)"
        )
        if not _ephemeral:
            _ephemeral.append(EncryptionKey("ephemeral", os.urandom(32)))
        keys = list(_ephemeral)
    return Keyring(keys)
