"""Procore API client: shared tokens, rate-limit pacing, retries, Integration Health counters."""

from app.procore.client import ProcoreClient, needs_company_header
from app.procore.connection import make_http_client
from app.procore.credentials import ProcoreCredentials, RequestStats
from app.procore.errors import (
    AppNotConnectedError,
    AppNotInstalledError,
    InvalidClientError,
    ProcoreAuthError,
    ProcoreBadRequestError,
    ProcoreError,
    ProcoreForbiddenError,
    ProcoreNetworkError,
    ProcoreNotFoundError,
    ProcoreRateLimitError,
    ProcoreServerError,
)
from app.procore.health import HealthCounters
from app.procore.paging import Page

__all__ = [
    "AppNotConnectedError",
    "AppNotInstalledError",
    "HealthCounters",
    "InvalidClientError",
    "Page",
    "ProcoreAuthError",
    "ProcoreBadRequestError",
    "ProcoreClient",
    "ProcoreCredentials",
    "ProcoreError",
    "ProcoreForbiddenError",
    "ProcoreNetworkError",
    "ProcoreNotFoundError",
    "ProcoreRateLimitError",
    "ProcoreServerError",
    "RequestStats",
    "make_http_client",
    "needs_company_header",
]
