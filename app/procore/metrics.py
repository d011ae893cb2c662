"""Prometheus metrics of Procore traffic: answers by company and code, 429s, token requests.

Registered on the service's one registry (`app.core.metrics.REGISTRY`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from prometheus_client import Counter

from app.core.metrics import REGISTRY
from app.procore.health import HealthCounters

PROCORE_REQUESTS = Counter(
    "connector_procore_requests",
    "Answers from Procore by company, HTTP status code and class (code 0: no answer)",
    ["company_id", "code", "status_class"],
    registry=REGISTRY,
)
PROCORE_RATE_LIMITED = Counter(
    "connector_procore_rate_limited",
    "429 answers from Procore, by company (also in connector_procore_requests_total)",
    ["company_id"],
    registry=REGISTRY,
)
TOKEN_REFRESHES = Counter(
    "connector_procore_token_refreshes",
    "OAuth token requests sent to Procore's login host, by outcome (ok, refused, error)",
    ["result"],
    registry=REGISTRY,
)


def status_class(code: int) -> str:
    """`2xx`, `4xx`, ... for an HTTP status; `none` when no answer arrived."""
    return f"{code // 100}xx" if code else "none"


class MeteredHealthCounters(HealthCounters):
    """The client's Integration Health counters, also exported as Prometheus counters.

    The Procore client records every answer here (one call per attempt), so this is the one
    place that sees each status code with its company.
    """

    def record(self, company_id: int | None, status: int, *, company_header_sent: bool) -> None:
        """Counts one answer in the health counters and in Prometheus."""
        super().record(company_id, status, company_header_sent=company_header_sent)
        company = "" if company_id is None else str(company_id)
        PROCORE_REQUESTS.labels(company, str(status), status_class(status)).inc()
        if status == 429:
            PROCORE_RATE_LIMITED.labels(company).inc()


def token_request_hook(login_url: str) -> Callable[[httpx.Response], Awaitable[None]]:
    """An httpx response hook counting answers of Procore's token endpoint."""
    token_url = login_url.rstrip("/") + "/oauth/token"

    async def hook(response: httpx.Response) -> None:
        request = response.request
        if request.method == "POST" and str(request.url).split("?", 1)[0] == token_url:
            if response.status_code == 200:
                result = "ok"
            elif response.status_code in (400, 401, 403):
                result = "refused"
            else:
                result = "error"
            TOKEN_REFRESHES.labels(result).inc()

    return hook
