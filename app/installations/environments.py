"""Which Procore environment an installation lives in, and the credentials and hosts it takes.

Procore runs four environments with their own login and API hosts; tokens and credentials
are not valid across them (procore/documentation: platform_concepts/development_environments.md,
oauth/oauth_endpoints.md). The rules are in docs/decisions/0013-discovery.md.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import CREDENTIAL_FAMILY, ProcoreEnvironment
from app.credentials import service as secrets
from app.credentials.models import SecretKind
from app.installations.errors import EnvironmentNotServed
from app.installations.models import Installation, InstallationStatus
from app.procore import ProcoreCredentials
from app.runtime import Runtime


def parse_environment(value: str | None) -> ProcoreEnvironment | None:
    """The environment named by a stored or given value (None for None)."""
    return None if value is None else ProcoreEnvironment(value)


def environment_of(inst: Installation) -> ProcoreEnvironment:
    """The installation's environment; an unknown stored value is refused, never guessed."""
    try:
        return ProcoreEnvironment(inst.environment)
    except ValueError:
        raise EnvironmentNotServed(
            f"company {inst.company_id} has an unknown Procore environment {inst.environment!r}"
        ) from None


def _variables(environment: ProcoreEnvironment) -> str:
    family = CREDENTIAL_FAMILY[environment].upper()
    return f"CONNECTOR_{family}_CLIENT_ID and CONNECTOR_{family}_CLIENT_SECRET"


def app_credentials(
    rt: Runtime, environment: ProcoreEnvironment | None = None
) -> ProcoreCredentials:
    """The app's own DMSA pair for an environment, bound to that environment's hosts.

    Raises EnvironmentNotServed when the deployment holds no pair valid there (federal without
    federal credentials, or a production company when only a sandbox pair is configured):
    a pair is never sent to another environment's login host.
    """
    settings = rt.settings
    env = environment or settings.procore_env
    pair = settings.app_credentials_for(env)
    if pair is None:
        main = (
            " (CONNECTOR_CLIENT_ID/SECRET serve "
            f"{CREDENTIAL_FAMILY[settings.procore_env]} only, per CONNECTOR_PROCORE_ENV)"
            if settings.client_id
            else ""
        )
        raise EnvironmentNotServed(
            f"this deployment has no app credentials for Procore's {env.value} environment"
            f"{main}: set {_variables(env)}, or give the installation its own client_id/"
            "client_secret",
            details=[{"field": "environment", "environment": env.value}],
        )
    login, api = settings.hosts_for(env)
    return ProcoreCredentials(pair[0], pair[1].get_secret_value(), login_url=login, api_url=api)


def ensure_servable(rt: Runtime, environment: ProcoreEnvironment, *, own_credentials: bool) -> None:
    """Refuses an installation whose environment the deployment cannot call."""
    if own_credentials:
        return
    settings = rt.settings
    if not any(settings.app_credentials_for(env) for env in ProcoreEnvironment):
        return  # no app pair at all: runs fail with that configuration error until one is set
    app_credentials(rt, environment)


async def credentials_for(
    session: AsyncSession, rt: Runtime, inst: Installation
) -> ProcoreCredentials:
    """The DMSA credentials to call Procore with for this installation, bound to the hosts of
    its environment."""
    env = environment_of(inst)
    if inst.client_id:
        secret = await secrets.get_secret(
            session, rt.keyring, inst.company_id, SecretKind.client_secret
        )
        if secret:
            login, api = rt.settings.hosts_for(env)
            return ProcoreCredentials(inst.client_id, secret, login_url=login, api_url=api)
    return app_credentials(rt, env)


def credentials_source(inst: Installation, rt: Runtime) -> Literal["installation", "app", "none"]:
    """Where this installation's credentials come from: installation, app or none."""
    if inst.status == InstallationStatus.uninstalled:
        return "none"  # destroyed at uninstall; nothing is called for it any more
    if inst.client_id:
        return "installation"
    try:
        env = ProcoreEnvironment(inst.environment)
    except ValueError:
        return "none"
    return "app" if rt.settings.app_credentials_for(env) is not None else "none"
