"""The admin API of SPEC section 4 over real HTTP, against the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import (
    ADMIN_TOKEN,
    RunningService,
    install_event,
    make_settings,
    query_rows,
    wait_until,
)

TENANT = ("tenant-client-id", "tenant-secret-value-9d1f")
ROUTES = [
    ("GET", "/admin/v1/installations"),
    ("GET", "/admin/v1/installations/1"),
    ("PATCH", "/admin/v1/installations/1"),
    ("DELETE", "/admin/v1/installations/1"),
    ("PUT", "/admin/v1/installations/1/credentials"),
    ("POST", "/admin/v1/installations/1/syncs"),
    ("POST", "/admin/v1/installations/1/destination/signing-secret"),
    ("GET", "/admin/v1/syncs"),
    ("GET", "/admin/v1/syncs/abc"),
    ("POST", "/admin/v1/syncs/abc/cancel"),
]


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """Two companies and one more DMSA pair the simulator accepts (a tenant's own)."""
    return SimulatorConfig.lenient(
        companies=2, projects=2, records=12, seed=3, extra_clients=(TENANT,)
    )


def company(sim: SimulatorServer, index: int = 0) -> int:
    return sim.state.company_ids()[index]


def assert_error(answer: object, status: int, code: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]  # type: ignore[no-any-return]


class TestAuthentication:
    @pytest.mark.parametrize(("method", "path"), ROUTES)
    def test_401_without_a_valid_bearer_token(
        self, service: RunningService, method: str, path: str
    ) -> None:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
            {"Authorization": f"Basic {ADMIN_TOKEN}"},
            {"Authorization": "Bearer"},
        ):
            answer = service.anonymous.request(method, path, headers=headers, json={})
            assert_error(answer, 401, "unauthorized")
            assert answer.headers["www-authenticate"] == "Bearer"

    def test_no_tokens_configured_refuses_all(
        self, sim: SimulatorServer, database_url: str, destination_url: str
    ) -> None:
        settings = make_settings(
            database_url=database_url, destination_url=destination_url, admin_tokens=[]
        )
        with RunningService(settings) as bare:
            assert_error(bare.admin.get("/admin/v1/installations"), 401, "unauthorized")


class TestInstallations:
    def test_list_pages_and_filters(self, service: RunningService, sim: SimulatorServer) -> None:
        first, second = company(sim, 0), company(sim, 1)
        service.install_and_sync(first)
        service.install_and_sync(second)
        service.callback({"type": "installation.deleted", "data": {"company_id": second}})
        everything = service.admin.get("/admin/v1/installations").json()
        assert [inst["company_id"] for inst in everything] == [first, second]
        assert everything[0]["last_run"]["status"] == "succeeded"
        page = service.admin.get("/admin/v1/installations", params={"limit": 1})
        assert [inst["company_id"] for inst in page.json()] == [first]
        assert (
            page.headers["link"] == f'</admin/v1/installations?after={first}&limit=1>; rel="next"'
        )
        rest = service.admin.get("/admin/v1/installations", params={"after": first, "limit": 1})
        assert [inst["company_id"] for inst in rest.json()] == [second]
        gone = service.admin.get("/admin/v1/installations", params={"status": "uninstalled"})
        assert [inst["company_id"] for inst in gone.json()] == [second]
        unpaused = service.admin.get("/admin/v1/installations", params={"paused": "false"})
        assert len(unpaused.json()) == 2
        bad = service.admin.get("/admin/v1/installations", params={"status": "sleepy"})
        assert "status" in assert_error(bad, 400, "validation_error")["message"]
        assert_error(
            service.admin.get("/admin/v1/installations", params={"limit": 0}),
            400,
            "validation_error",
        )

    def test_detail_has_per_stream_state(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = company(sim)
        service.install_and_sync(company_id)
        detail = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        states = {(s["stream"], s["project_id"]): s for s in detail["stream_states"]}
        projects = states[("projects", None)]
        assert projects["records"] == len(sim.state.project_ids(company_id))
        assert projects["last_success_at"] is not None
        assert_error(service.admin.get("/admin/v1/installations/99"), 404, "not_found")
        assert_error(service.admin.get("/admin/v1/installations/abc"), 400, "validation_error")

    def test_patch_changes_and_validates(
        self, service: RunningService, sim: SimulatorServer, tmp_path: Path
    ) -> None:
        company_id = company(sim)
        assert service.callback(install_event(company_id)).status_code == 202
        url = f"/admin/v1/installations/{company_id}"
        other = "postgresql://etl:pg-pass-77@db.example:5432/warehouse?table_prefix=procore_"
        changed = service.admin.patch(
            url,
            json={
                "schedule": "every 15m",
                "streams": ["projects", "rfis"],
                "paused": True,
                "destination_url": other,
            },
        )
        assert changed.status_code == 200, changed.text
        body = changed.json()
        assert (body["schedule"], body["streams"], body["paused"]) == (
            "every 15m",
            ["projects", "rfis"],
            True,
        )
        assert "pg-pass-77" not in changed.text and "etl:***@db.example" in body["destination"]
        for patch, field in (
            ({"schedule": "sometimes"}, "schedule"),
            ({"streams": "projects,nonsense"}, "streams"),
            ({"destination_url": "ftp://x"}, "destination_url"),
            ({"paused": "maybe"}, "paused"),
            ({"colour": "blue"}, "colour"),
        ):
            error = assert_error(service.admin.patch(url, json=patch), 400, error_code(field))
            assert field in error["message"], (patch, error)
        assert_error(service.admin.patch("/admin/v1/installations/5", json={}), 404, "not_found")


def error_code(field: str) -> str:
    return "validation_error" if field in ("paused", "colour") else "bad_request"


class TestCredentials:
    def test_put_checks_with_procore_and_never_echoes_the_secret(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = company(sim)
        service.install_and_sync(company_id)
        url = f"/admin/v1/installations/{company_id}/credentials"
        tokens_before = len(sim.state.request_log(path_prefix="/oauth/token"))
        answer = service.admin.put(url, json={"client_id": TENANT[0], "client_secret": TENANT[1]})
        assert answer.status_code == 200, answer.text
        checks = sim.state.request_log(path_prefix="/oauth/token")[tokens_before:]
        assert [entry["status"] for entry in checks] == [200]  # checked by fetching a token
        assert answer.json()["credentials"] == {
            "source": "installation",
            "client_id": TENANT[0],
            "client_secret_set": True,
        }
        assert TENANT[1] not in answer.text
        run_id = service.admin.post(f"/admin/v1/installations/{company_id}/syncs").json()["run_id"]
        assert service.wait_for_run(run_id)["status"] == "succeeded"

    def test_rejected_credentials_are_422_with_procores_reason(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = company(sim)
        service.install_and_sync(company_id)
        url = f"/admin/v1/installations/{company_id}/credentials"
        answer = service.admin.put(url, json={"client_id": TENANT[0], "client_secret": "nope-x1"})
        error = assert_error(answer, 422, "unprocessable")
        assert "Client authentication failed" in error["message"]
        assert "nope-x1" not in answer.text
        inst = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert inst["credentials"]["source"] == "app"  # the old ones stay
        missing = service.admin.put(
            "/admin/v1/installations/5/credentials", json={"client_id": "a", "client_secret": "b"}
        )
        assert_error(missing, 404, "not_found")
        assert_error(service.admin.put(url, json={"client_id": "a"}), 400, "validation_error")


class TestSyncs:
    def test_queue_list_get_cancel(self, service: RunningService, sim: SimulatorServer) -> None:
        company_id = company(sim)
        first = service.install_and_sync(company_id)
        sim.state.set_faults(latency_ms=150)
        queued = service.admin.post(
            f"/admin/v1/installations/{company_id}/syncs", json={"full_refresh": True}
        )
        assert queued.status_code == 202
        run_id = queued.json()["run_id"]
        wait_until(
            lambda: service.admin.get(f"/admin/v1/syncs/{run_id}").json()["status"] == "running",
            message="the manual run to start",
        )
        again = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
        assert_error(again, 409, "conflict")
        cancelled = service.admin.post(f"/admin/v1/syncs/{run_id}/cancel")
        assert cancelled.status_code == 202 and cancelled.json()["cancel_requested"] is True
        assert service.wait_for_run(run_id)["status"] == "cancelled"
        sim.state.set_faults()
        assert_error(service.admin.post(f"/admin/v1/syncs/{run_id}/cancel"), 409, "conflict")
        history = service.admin.get("/admin/v1/syncs", params={"company_id": company_id}).json()
        assert [run["run_id"] for run in history] == [run_id, first["run_id"]]
        done = service.admin.get("/admin/v1/syncs", params={"status": "succeeded"}).json()
        assert [run["run_id"] for run in done] == [first["run_id"]]
        page = service.admin.get("/admin/v1/syncs", params={"limit": 1})
        assert len(page.json()) == 1
        older = service.admin.get(page.links["next"]["url"]).json()
        assert [run["run_id"] for run in older] == [first["run_id"]]
        assert_error(
            service.admin.get("/admin/v1/syncs", params={"status": "x"}), 400, "validation_error"
        )
        assert_error(service.admin.get("/admin/v1/syncs/no-such-run"), 404, "not_found")
        assert_error(service.admin.post("/admin/v1/installations/5/syncs"), 404, "not_found")


class TestUninstall:
    def test_delete_keeps_data_and_purge_removes_only_that_company(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        kept, purged = company(sim, 0), company(sim, 1)
        service.install_and_sync(kept)
        service.install_and_sync(purged)

        def rows(company_id: int) -> int:
            sql = "SELECT count(*) FROM rfis WHERE company_id = :c"
            return int(query_rows(destination_url, sql, c=company_id)[0][0])

        assert rows(kept) > 0 and rows(purged) > 0
        plain = service.admin.delete(f"/admin/v1/installations/{kept}")
        assert plain.json() == {
            "company_id": kept,
            "status": "uninstalled",
            "purged": False,
            "deleted_rows": {},
        }
        assert rows(kept) > 0
        answer = service.admin.delete(f"/admin/v1/installations/{purged}", params={"purge": "true"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["purged"] is True and body["deleted_rows"]["rfis"] > 0
        assert rows(purged) == 0 and rows(kept) > 0
        secrets_left = query_rows(
            service.settings.database_url,
            "SELECT count(*) FROM stored_secrets WHERE company_id = :c",
            c=purged,
        )
        assert secrets_left[0][0] == 0
        inst = service.admin.get(f"/admin/v1/installations/{purged}").json()
        assert inst["status_reason"] == "uninstalled by an admin"
        assert_error(service.admin.delete("/admin/v1/installations/5"), 404, "not_found")

    def test_purge_removes_a_file_destinations_company_folder(
        self, service: RunningService, sim: SimulatorServer, tmp_path: Path
    ) -> None:
        company_id = company(sim)
        service.install_and_sync(company_id)
        url = f"/admin/v1/installations/{company_id}"
        service.admin.patch(url, json={"destination_url": f"file://{tmp_path}/out"})
        run = service.admin.post(f"{url}/syncs", json={"full_refresh": True}).json()
        assert service.wait_for_run(run["run_id"])["status"] == "succeeded"
        folder = tmp_path / "out" / str(company_id)
        assert any(folder.rglob("*.jsonl"))
        answer = service.admin.delete(url, params={"purge": "true"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["purged"] is True and answer.json()["deleted_rows"]["rfis"] > 0
        assert not folder.exists()


class TestOpenAPI:
    def test_documents_security_errors_and_examples(self, service: RunningService) -> None:
        spec = service.anonymous.get("/openapi.json").json()
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        listing = spec["paths"]["/admin/v1/installations"]["get"]
        assert listing["security"] == [{"HTTPBearer": []}]
        assert {"400", "401", "413"} <= set(listing["responses"])
        patch = spec["paths"]["/admin/v1/installations/{company_id}"]["patch"]
        examples = patch["requestBody"]["content"]["application/json"]["examples"]
        assert {"pause", "schedule", "destination"} <= set(examples)
        callback = spec["paths"]["/callbacks/installations"]["post"]
        assert "requestBody" in callback
