"""OAuth: the client-credentials grant in every body form, token info, expiry, 401s."""

from __future__ import annotations

import base64
import time

import httpx

from procore_sim.server import SimulatorServer
from tests.simulator.conftest import Caller, fetch_token

GRANT = {"grant_type": "client_credentials", "client_id": "sim-client-id",
         "client_secret": "sim-client-secret"}


class TestTokenGrant:
    def test_json_body(self, http: httpx.Client) -> None:
        response = http.post("/oauth/token", json=GRANT)
        assert response.status_code == 200
        assert response.json()["token_type"] == "bearer"

    def test_multipart_form_data(self, http: httpx.Client) -> None:
        response = http.post("/oauth/token", files={k: (None, v) for k, v in GRANT.items()})
        assert response.status_code == 200, response.text

    def test_http_basic_credentials(self, http: httpx.Client) -> None:
        basic = base64.b64encode(b"sim-client-id:sim-client-secret").decode()
        response = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                             headers={"Authorization": f"Basic {basic}"})
        assert response.status_code == 200

    def test_unknown_client_is_invalid_client(self, http: httpx.Client) -> None:
        response = http.post("/oauth/token", data={**GRANT, "client_id": "someone-else"})
        assert response.status_code == 401
        body = response.json()
        assert body["error"] == "invalid_client"
        assert body["error_description"]

    def test_missing_credentials_is_invalid_client(self, http: httpx.Client) -> None:
        response = http.post("/oauth/token", data={"grant_type": "client_credentials"})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"

    def test_other_grant_types_are_refused(self, http: httpx.Client) -> None:
        response = http.post("/oauth/token", data={**GRANT, "grant_type": "refresh_token"})
        assert response.status_code == 400
        assert response.json()["error"] == "unsupported_grant_type"

    def test_configured_lifetime_is_expires_in(self, http: httpx.Client,
                                               sim: SimulatorServer) -> None:
        sim.state.set_token_lifetime(120)
        assert http.post("/oauth/token", data=GRANT).json()["expires_in"] == 120

    def test_token_requests_are_logged(self, http: httpx.Client, sim: SimulatorServer) -> None:
        fetch_token(http)
        fetch_token(http)
        assert len(sim.state.request_log(path_prefix="/oauth/token")) == 2


class TestTokenUse:
    def test_token_info(self, caller: Caller) -> None:
        response = caller.http.get("/oauth/token/info", headers=caller.headers(None))
        assert response.status_code == 200
        body = response.json()
        assert body["application"]["uid"] == "sim-client-id"
        assert 5300 < body["expires_in_seconds"] <= 5400

    def test_unknown_token_is_401(self, http: httpx.Client) -> None:
        response = http.get("/rest/v1.0/companies", headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
        assert response.json() == {"error": "The access token is invalid"}

    def test_missing_token_is_401(self, http: httpx.Client) -> None:
        assert http.get("/rest/v1.0/companies").status_code == 401

    def test_expire_tokens_makes_next_call_401(self, caller: Caller) -> None:
        assert caller.get("/rest/v1.0/companies", company=None).status_code == 200
        caller.sim.state.expire_tokens()
        response = caller.get("/rest/v1.0/companies", company=None)
        assert response.status_code == 401
        assert "expired" in response.json()["error"]
        caller.token = fetch_token(caller.http)
        assert caller.get("/rest/v1.0/companies", company=None).status_code == 200

    def test_tokens_expire_after_their_lifetime(self, http: httpx.Client,
                                                sim: SimulatorServer) -> None:
        sim.state.set_token_lifetime(1)
        token = fetch_token(http)
        headers = {"Authorization": f"Bearer {token}"}
        assert http.get("/rest/v1.0/companies", headers=headers).status_code == 200
        time.sleep(1.1)
        assert http.get("/rest/v1.0/companies", headers=headers).status_code == 401

    def test_expire_tokens_over_control_api(self, caller: Caller) -> None:
        assert caller.http.post("/_sim/expire_tokens").status_code == 204
        assert caller.get("/rest/v1.0/companies", company=None).status_code == 401
