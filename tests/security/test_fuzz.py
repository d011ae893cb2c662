"""Schemathesis fuzzing of the admin API and the install callback from the app's own OpenAPI.

Operations are driven through Hypothesis directly (the schemathesis pytest plugin does not
load under this pytest), each with a bounded number of examples so the file runs in < 60 s.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

# The submodule at collection, not inside a test: imported lazily under assertion rewriting,
# it once raised CPython's "AST constructor recursion depth mismatch" in a worker that had just
# parsed a deeply nested body.
import schemathesis
import schemathesis.specs.openapi.schemas
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from procore_sim.server import SimulatorServer
from tests.factories import ADMIN_TOKEN, RunningService, install_event, signed

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


def operations(service: RunningService, prefix: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if op.path.startswith(prefix)]


def run_fuzz(operation: Any, check: Any) -> None:
    @FUZZ
    @given(case=operation.as_strategy())
    def fuzz(case: schemathesis.Case) -> None:
        check(case)

    fuzz()


class TestFuzzing:
    def test_admin_api_never_answers_5xx_and_conforms(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.callback(install_event(company_id)).status_code == 202
        admin_ops = operations(service, "/admin/")
        # SPEC section 4, plus create, uninstall, signing secret, tests, audit, freshness and
        # the two webhook settings routes
        assert len(admin_ops) == 17

        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=service.url,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                checks=CHECKS,
            )

        for operation in admin_ops:
            run_fuzz(operation, check)

    def test_signed_callbacks_never_answer_5xx(self, service: RunningService) -> None:
        (callback,) = operations(service, "/callbacks/")

        def check(case: schemathesis.Case) -> None:
            # Signed by hand: the signature covers the exact bytes, so they are sent as built.
            raw = json.dumps(case.body).encode() if isinstance(case.body, dict | list) else b"0"
            body, headers = signed(raw)
            answer = httpx.post(
                f"{service.url}/callbacks/installations", content=body, headers=headers
            )
            assert answer.status_code in (202, 400), answer.text
            if answer.status_code == 202:
                assert set(answer.json()) == {"company_id", "status"}
            else:
                assert answer.json()["error"]["code"] == "bad_request"

        run_fuzz(callback, check)

    def test_unsigned_callbacks_are_401(self, service: RunningService) -> None:
        (callback,) = operations(service, "/callbacks/")

        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=service.url)
            assert response.status_code in (401, 413), response.text

        run_fuzz(callback, check)
