"""Checks every /rest/ request passes before it is served: token, rate limit, company."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from procore_sim.listing import ApiError
from procore_sim.state import Simulator

MISSING_COMPANY = "Missing Procore-Company-Id header!"
RATE_LIMITED = {
    "hourly": "You have surpassed the max number of requests for an hour. "
              "Please wait until your limit resets.",
    "spike": "You have surpassed the max number of requests in a short period. "
             "Please wait until your limit resets.",
}


@dataclass(frozen=True)
class Caller:
    """Who is calling: the app's client id and the company named by the header."""

    client_id: str
    company_id: int | None


def sim_of(request: Request) -> Simulator:
    """The Simulator serving this request."""
    sim: Simulator = request.app.state.sim
    return sim


def request_info(request: Request) -> dict[str, Any]:
    """The per-request notes the outer middleware logs (authorized, rate-limit headers)."""
    info: dict[str, Any] = request.scope.setdefault("sim", {})
    return info


def bearer_token(request: Request) -> str:
    """The bearer token of the Authorization header, or ""."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def company_header(value: str | None) -> int | None:
    """The Procore-Company-Id header as an int, None when absent or not a number."""
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def unauthorized(reason: str) -> ApiError:
    """Procore's 401 for a missing, unknown or expired token."""
    text = "The access token expired" if reason == "expired" else "The access token is invalid"
    challenge = f'Bearer realm="Procore API", error="invalid_token", error_description="{text}"'
    return ApiError(401, {"error": text}, {"WWW-Authenticate": challenge})


def guard(request: Request, *, company_required: bool = True) -> Caller:
    """Authenticates, counts the request against the rate limits and checks the company."""
    sim = sim_of(request)
    info = request_info(request)
    issued, reason = sim.token_owner(bearer_token(request))
    if issued is None:
        raise unauthorized(reason)
    info["authorized"] = True
    raw_company = request.headers.get("procore-company-id")
    company_id = company_header(raw_company)
    decision = sim.rate_hit((issued.client_id, company_id))
    info["rate"] = decision.headers
    if not decision.allowed:
        raise ApiError(429, {"errors": RATE_LIMITED[decision.window]},
                       {"Retry-After": str(decision.retry_after)})
    if raw_company is None or not raw_company.strip():
        if company_required:
            raise ApiError(400, {"errors": MISSING_COMPANY})
        return Caller(issued.client_id, None)
    if company_id is None:
        raise ApiError(400, {"errors": f"Invalid Procore-Company-Id header: {raw_company!r}"})
    check_company(sim, company_id)
    return Caller(issued.client_id, company_id)


def check_company(sim: Simulator, company_id: int) -> None:
    """403 unless the app is installed and connected in the company."""
    message = sim.company_error(company_id)
    if message is not None:
        raise ApiError(403, {"errors": message})


def check_project(sim: Simulator, caller: Caller, project_id: int) -> int:
    """The project's company after checking it is live, in the caller's company and permitted."""
    owner = sim.project_company(project_id)
    if owner is None or owner != caller.company_id:
        raise ApiError(404, {"errors": f"Project {project_id} not found"})
    if not sim.project_permitted(project_id):
        raise ApiError(403, {"errors": "You do not have access to this project"})
    return owner
