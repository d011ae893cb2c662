"""Field fidelity: simulated records carry their published list-item model's fields, typed right.

The field lists are Procore's own (procore_sim/models/published.py, derived from the OpenAPI
description as published in a generated SDK). A field counts when every sampled record has it,
every non-null value has the model's JSON type, and at least one record gives it a value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from procore_sim import SimulatorConfig
from procore_sim.models import PUBLISHED_MODELS
from procore_sim.server import SimulatorServer
from tests.simulator.conftest import Caller

GOAL = 0.90
FLOOR = 0.80  # no stream may lag far behind the average

# model -> list reads that serve it ({cid}, {pid} filled in), read the production way.
READS: dict[str, list[str]] = {
    "companies": ["/rest/v1.0/companies"],
    "projects": ["/rest/v1.1/projects?company_id={cid}&filters[by_status]=All"],
    "users": ["/rest/v1.3/companies/{cid}/users"],
    "users_inactive": ["/rest/v1.0/companies/{cid}/users/inactive"],
    "vendors": ["/rest/v1.0/vendors?company_id={cid}"],
    "vendors_inactive": ["/rest/v1.0/companies/{cid}/vendors/inactive"],
    "rfis": ["/rest/v1.0/projects/{pid}/rfis", "/rest/v1.0/projects/{pid}/rfis/recycle_bin"],
    "submittals": [
        "/rest/v1.1/projects/{pid}/submittals",
        "/rest/v1.1/projects/{pid}/submittals/recycle_bin",
    ],
    "observations": [
        "/rest/v1.0/observations/items?project_id={pid}",
        "/rest/v1.0/projects/{pid}/recycle_bin/observations/items",
    ],
    "punch_items": [
        "/rest/v1.1/punch_items?project_id={pid}",
        "/rest/v1.1/punch_items/recycle_bin?project_id={pid}",
    ],
    "change_events": ["/rest/v1.0/change_events?project_id={pid}&filters[include_deleted]=with"],
    "work_order_contracts": [
        "/rest/v1.0/work_order_contracts?project_id={pid}&view=extended"
        "&filters[include_deleted]=with"
    ],
    "purchase_order_contracts": [
        "/rest/v1.0/purchase_order_contracts?project_id={pid}&view=extended"
        "&filters[include_deleted]=with"
    ],
    "prime_contracts": ["/rest/v1.0/prime_contracts?project_id={pid}"],
    "budget_views": ["/rest/v1.0/budget_views?project_id={pid}"],
    "budget_detail_rows": [],  # one read per budget view, below
    "cost_codes": ["/rest/v1.0/cost_codes?project_id={pid}"],
    "documents": [
        "/rest/v1.0/projects/{pid}/documents",
        "/rest/v1.0/projects/{pid}/documents?filters[is_in_recycle_bin]=true",
    ],
    "checklists": [
        "/rest/v1.0/projects/{pid}/checklist/lists",
        "/rest/v1.0/projects/{pid}/recycle_bin/checklist/lists",
    ],
    "timesheets": [
        "/rest/v1.0/projects/{pid}/timesheets",
        "/rest/v1.0/projects/{pid}/timesheets?filters[deleted_at]=2000-01-01...2100-01-01",
    ],
    "daily_manpower_logs": [
        "/rest/v1.0/projects/{pid}/manpower_logs?filters[status]=all"
        "&start_date=2000-01-01&end_date=2100-01-01"
    ],
}
# Streams whose deletes stay visible: delete a few so deleted_at and the flags carry values.
SOFT_DELETED = (
    "rfis",
    "submittals",
    "observations",
    "punch_items",
    "change_events",
    "work_order_contracts",
    "purchase_order_contracts",
    "documents",
    "checklists",
    "timesheets",
)


def matches(value: Any, kind: str) -> bool:
    """Whether a JSON value has a model type."""
    if kind == "any":
        return True
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = {"str": str, "bool": bool, "array": list, "object": dict}[kind]
    return isinstance(value, expected)


def score(model: str, records: list[dict[str, Any]]) -> tuple[int, int, list[str]]:
    """(fields that count, model fields, the names of those that do not)."""
    fields = PUBLISHED_MODELS[model].fields
    missing = []
    for name, kind in fields.items():
        present = all(name in r for r in records)
        values = [r.get(name) for r in records if r.get(name) is not None]
        if not (present and values and all(matches(v, kind) for v in values)):
            missing.append(name)
    return len(fields) - len(missing), len(fields), missing


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Every model's records as a production client reads them, after a few deletes."""
    config = SimulatorConfig.lenient(companies=1, projects=2, records=20, seed=4)
    with SimulatorServer(config) as sim, httpx.Client(base_url=sim.url, timeout=30) as http:
        caller = Caller(http, sim)
        state = sim.state
        cid = caller.company_id
        for stream in SOFT_DELETED:
            for record in state.records(stream, cid)[:3]:
                state.delete_record(stream, record["id"])
        out: dict[str, list[dict[str, Any]]] = {}
        for model, templates in READS.items():
            records: list[dict[str, Any]] = []
            for pid in state.project_ids(cid):
                for template in templates:
                    records += caller.get_all(template.format(cid=cid, pid=pid))
                if "{pid}" not in "".join(templates) and templates:
                    break
            out[model] = records
        rows: list[dict[str, Any]] = []
        for pid in state.project_ids(cid):
            for view in caller.get_all(f"/rest/v1.0/budget_views?project_id={pid}"):
                path = f"/rest/v1.0/budget_views/{view['id']}/detail_rows?project_id={pid}"
                rows += caller.get_all(path)
        out["budget_detail_rows"] = rows
        yield out


class TestFieldFidelity:
    def test_every_model_is_served(self, served: dict[str, list[dict[str, Any]]]) -> None:
        for model, records in served.items():
            assert records, f"nothing served for {model}"

    def test_share_of_model_fields_present_with_the_right_type(
        self, served: dict[str, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
    ) -> None:
        total_ok = total = 0
        lines = []
        for model, records in served.items():
            ok, count, missing = score(model, records)
            total_ok += ok
            total += count
            lines.append(f"{model:26s} {ok:3d}/{count:3d} {ok / count:6.1%}  missing: {missing}")
            assert ok / count >= FLOOR, lines[-1]
        share = total_ok / total
        with capsys.disabled():
            print("\nfield fidelity per stream (published list-item model fields, typed right):")
            print("\n".join(lines))
            print(f"overall {total_ok}/{total} = {share:.1%}")
        assert share >= GOAL

    def test_a_wrong_type_does_not_count(self) -> None:
        record = {name: None for name in PUBLISHED_MODELS["companies"].fields}
        record |= {"id": "12", "name": "Acme", "is_active": True, "logo_url": "x"}
        record |= {"pcn_business_experience": False, "my_company": 0}
        ok, count, missing = score("companies", [record])
        assert sorted(missing) == ["id", "my_company"]
        assert (ok, count) == (4, 6)
