"""No secret (client secret, access token, encryption key, destination password, admin token,
callback secret) appears in any response or any log line while the whole lifecycle runs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import pytest
import structlog

from app.core.logging import configure_logging
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import (
    ADMIN_TOKEN,
    CALLBACK_SECRET,
    TEST_KEY,
    RunningService,
    callback_event,
    install_event,
)

TENANT = ("tenant-client-id", "tenant-secret-7c1e5a")
REJECTED_SECRET = "rejected-secret-0b9d"
DESTINATION_PASSWORD = "dest-pw-3f8a2c"


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig.lenient(
        companies=2,
        projects=2,
        records=12,
        seed=3,
        extra_clients=(TENANT,),
        token_lifetime=3,
    )


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record, rendered by the production pipeline (JSON, scrubbed), at DEBUG."""
    buffer = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("DEBUG", "json")
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.reset_defaults()


class TestSecretsNeverLeak:
    def test_lifecycle_leaks_no_secret(
        self,
        captured_logs: io.StringIO,
        service: RunningService,
        sim: SimulatorServer,
        sim_config: SimulatorConfig,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        first, second = sim.state.company_ids()
        answers: list[httpx.Response] = []

        def keep(answer: httpx.Response) -> httpx.Response:
            answers.append(answer)
            return answer

        # Install with the tenant's own pair, sync (tokens expire after 3 s and are refetched).
        keep(service.callback(install_event(first, client_id=TENANT[0], client_secret=TENANT[1])))
        run_id = service.latest_run_id(first)
        assert service.wait_for_run(run_id)["status"] == "succeeded"
        keep(service.admin.get(f"/admin/v1/syncs/{run_id}"))
        # Credentials: accepted, then rejected (422 with Procore's reason).
        url = f"/admin/v1/installations/{first}/credentials"
        keep(service.admin.put(url, json={"client_id": TENANT[0], "client_secret": TENANT[1]}))
        rejected = keep(
            service.admin.put(url, json={"client_id": TENANT[0], "client_secret": REJECTED_SECRET})
        )
        assert rejected.status_code == 422
        # A destination with a password that cannot be reached: the failed run reports it.
        keep(service.callback(install_event(second)))
        service.wait_for_run(service.latest_run_id(second))
        destination = f"postgresql://etl:{DESTINATION_PASSWORD}@127.0.0.1:1/warehouse"
        patched = keep(
            service.admin.patch(
                f"/admin/v1/installations/{second}", json={"destination_url": destination}
            )
        )
        assert patched.status_code == 200
        queued = keep(service.admin.post(f"/admin/v1/installations/{second}/syncs"))
        failed = service.wait_for_run(queued.json()["run_id"])
        assert failed["status"] == "failed"
        keep(service.admin.get(f"/admin/v1/syncs/{failed['run_id']}"))
        # Errors of every kind.
        keep(service.anonymous.get("/admin/v1/installations"))
        keep(
            service.anonymous.get("/admin/v1/installations", headers={"Authorization": "Bearer x"})
        )
        keep(service.admin.patch(f"/admin/v1/installations/{second}", json={"schedule": "?"}))
        keep(service.admin.get("/admin/v1/installations/1"))
        keep(service.callback({"type": "nope"}))
        keep(service.callback(install_event(first), secret="whsec_" + "QUJDREVGR0hJSktMTU5PUA=="))
        # Uninstall with purge of the SQLite company, and the listings afterwards.
        keep(service.callback(callback_event("deleted", first)))
        keep(service.admin.get("/admin/v1/installations"))
        keep(service.admin.get(f"/admin/v1/installations/{first}"))
        keep(service.admin.get(f"/admin/v1/installations/{second}"))
        keep(service.admin.get("/admin/v1/syncs"))
        keep(service.anonymous.get("/openapi.json"))

        tokens = sim.state.issued_tokens()
        assert len(tokens) >= 2
        secrets = {
            "app client secret": sim_config.client_secret,
            "tenant client secret": TENANT[1],
            "rejected client secret": REJECTED_SECRET,
            "destination password": DESTINATION_PASSWORD,
            "encryption key": TEST_KEY.split(":", 1)[1],
            "admin token": ADMIN_TOKEN,
            "callback secret": CALLBACK_SECRET.removeprefix("whsec_"),
            **{f"access token {i}": token for i, token in enumerate(tokens)},
        }
        logs = captured_logs.getvalue()
        printed = capfd.readouterr()
        assert "sync finished" in logs and "install callback applied" in logs  # really captured
        for name, secret in secrets.items():
            assert secret not in logs, f"{name} in the log"
            assert secret not in printed.out + printed.err, f"{name} printed"
            for answer in answers:
                assert secret not in answer.text, f"{name} in {answer.request.url}"
