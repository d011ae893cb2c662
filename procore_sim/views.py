"""Production's default views of a list: what Procore serves unless the client asks for more.

procore-api.md section 11: active projects unless filters[by_status], approved manpower logs
unless filters[status], inactive users/vendors on their own lists, compact commitments unless
view=extended, and 408 for an unfiltered read that is too large. Each is switchable in
SimulatorConfig.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from procore_sim.generate.financial import compact_commitment
from procore_sim.listing import ApiError
from procore_sim.state import Simulator
from procore_sim.store import Stored, dumps


def choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    """A filter value from a fixed set (case-insensitive); 422 for anything else."""
    value = params.get(f"filters[{name}]", "").strip()
    if not value:
        return default
    for option in allowed:
        if value.lower() == option.lower():
            return option
    raise ApiError(422, {"errors": {name: [f"must be one of {', '.join(allowed)}"]}})


def project_status(
    records: list[Stored], params: Mapping[str, str], sim: Simulator
) -> list[Stored]:
    """Active projects unless filters[by_status] is All or Inactive (procore-api.md section 11)."""
    default = "Active" if sim.config.active_projects_only else "All"
    status = choice(params, "by_status", ("All", "Active", "Inactive"), default)
    if status == "All":
        return records
    want = status == "Active"
    return [s for s in records if bool(s.data.get("active", True)) == want]


def people_status(records: list[Stored], inactive_list: bool, sim: Simulator) -> list[Stored]:
    """Inactive users/vendors only on their /inactive lists (when so configured)."""
    if inactive_list:
        return [s for s in records if s.data.get("is_active") is False]
    if sim.config.inactive_on_own_lists:
        return [s for s in records if s.data.get("is_active") is not False]
    return records


def manpower_status(
    records: list[Stored], params: Mapping[str, str], sim: Simulator
) -> list[Stored]:
    """Approved manpower logs unless filters[status] says pending or all."""
    default = "approved" if sim.config.approved_manpower_only else "all"
    status = choice(params, "status", ("pending", "approved", "all"), default)
    if status == "all":
        return records
    return [s for s in records if s.data.get("status") == status]


COMMITMENTS = ("work_order_contracts", "purchase_order_contracts")


def compact(params: Mapping[str, str], sim: Simulator) -> bool:
    """Whether commitments are served compact: the default unless view=extended."""
    view = params.get("view", "").strip().lower()
    if view == "extended":
        return False
    return view == "compact" or sim.config.compact_commitments


def compact_bytes(stored: Stored) -> bytes:
    """The compact serialization of a commitment, made once per change."""
    if stored.alt_raw is None:
        stored.alt_raw = dumps(compact_commitment(stored.data))
    return stored.alt_raw


def too_large(request: Request, sim: Simulator) -> None:
    """408 for an unfiltered read asking for more than the configured page size."""
    threshold = sim.faults.too_large_per_page
    if threshold is None:
        return
    params = request.query_params
    try:
        per_page = int(params.get("per_page", sim.config.default_per_page))
    except ValueError:
        return
    filtered = any(key.startswith("filters[") for key in params)
    if per_page > threshold and not filtered:
        raise ApiError(
            408,
            {
                "errors": "Request Timeout: the request took too long. Fetch large datasets "
                "with filters and smaller pages."
            },
        )
