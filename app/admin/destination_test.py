"""`POST /admin/v1/destinations/test`: checks a destination without syncing anything."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictInt

from app.admin import responses as r
from app.admin.auth import Configurer
from app.core.database import unit_of_work
from app.core.errors import BadRequest
from app.deps import RuntimeDep
from app.destinations import InvalidDestinationURL, validate_destination_url
from app.destinations.policy import policy_from_settings
from app.destinations.probe import ProbeResult, probe_destination
from app.installations import service
from app.installations.destination import destination_url_for, signing_secrets
from app.runtime import Runtime

router = APIRouter(tags=["admin"])
# Probing writes (and deletes) a test record: a change of the destination, not a read.


class DestinationTestIn(BaseModel):
    """What to test: a destination URL, an installation's destination, or both."""

    model_config = ConfigDict(extra="forbid")

    destination_url: SecretStr | None = Field(
        default=None,
        max_length=2048,
        description="the URL to test (write-only); default: the installation's destination",
    )
    company_id: StrictInt | None = Field(
        default=None,
        gt=0,
        lt=2**63,
        description="test with this installation's destination and signing secret",
    )
    signing_secret: SecretStr | None = Field(
        default=None,
        max_length=256,
        description="for an HTTP URL without company_id: the whsec_ secret to sign with",
    )


async def _what_to_test(rt: Runtime, body: DestinationTestIn) -> tuple[str, str | None]:
    url = body.destination_url.get_secret_value() if body.destination_url else None
    secret = body.signing_secret.get_secret_value() if body.signing_secret else None
    if body.company_id is not None:
        async with unit_of_work(rt.sessions) as session:
            inst = await service.require(session, body.company_id)
            stored = await destination_url_for(session, rt, inst)
            if secret is None and (url is None or url == stored):
                secret, _previous = await signing_secrets(session, rt.keyring, body.company_id)
            url = url or stored
    if url is None:
        raise BadRequest(
            "give destination_url, company_id or both", details=[{"field": "destination_url"}]
        )
    try:
        return validate_destination_url(url, policy_from_settings(rt.settings)), secret
    except InvalidDestinationURL as exc:
        message = str(exc)
        if not message.startswith("destination_url"):
            message = f"destination_url: {message}"
        raise BadRequest(message, details=[{"field": "destination_url"}]) from None


async def _test(rt: Runtime, body: DestinationTestIn) -> ProbeResult:
    url, secret = await _what_to_test(rt, body)  # the database session ends before probing
    try:
        return await probe_destination(
            url, policy=policy_from_settings(rt.settings), signing_secret=secret
        )
    except InvalidDestinationURL as exc:
        raise BadRequest(str(exc), details=[{"field": "destination_url"}]) from None


@router.post(
    "/destinations/test",
    response_model=ProbeResult,
    responses={404: r.NOT_FOUND},
)
async def check_destination(
    rt: RuntimeDep,
    _configurer: Configurer,
    body: Annotated[
        DestinationTestIn,
        Body(
            openapi_examples={
                "installation": {
                    "summary": "an installation's destination and signing secret",
                    "value": {"company_id": 123},
                },
                "url": {
                    "summary": "a URL before setting it",
                    "value": {"destination_url": "postgresql://etl:secret@db/warehouse"},
                },
            }
        ),
    ],
) -> ProbeResult:
    """Checks a destination without syncing: reachable, writable, and for HTTP receivers that
    the signature is accepted (and a wrong one refused). Always 200 with `ok` and each check;
    `error` says what failed and why. Nothing written stays."""
    return await _test(rt, body)


@router.post(
    "/installations/{company_id}/destination/test",
    response_model=ProbeResult,
    responses={404: r.NOT_FOUND},
)
async def check_installation_destination(
    company_id: r.CompanyId,
    rt: RuntimeDep,
    _configurer: Configurer,
) -> ProbeResult:
    """Checks the installation's current destination with its signing secret (see
    `POST /admin/v1/destinations/test`)."""
    return await test_installation_destination(rt, company_id)


async def test_installation_destination(rt: Runtime, company_id: int) -> ProbeResult:
    """The installation's destination checked with its signing secret (the API and the
    console's action)."""
    return await _test(rt, DestinationTestIn(company_id=company_id))
