"""The shared httpx client: explicit timeouts, connection limits and keep-alive."""

from __future__ import annotations

import httpx

USER_AGENT = f"procore-dmsa-connector/0.1 httpx/{httpx.__version__}"


def make_http_client(
    *,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    write_timeout: float = 30.0,
    pool_timeout: float = 30.0,
    max_connections: int = 50,
    max_keepalive_connections: int = 20,
    keepalive_expiry: float = 60.0,
    trust_env: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """Returns the one AsyncClient the app shares for Procore; the caller closes it."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=write_timeout, pool=pool_timeout
        ),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
        ),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=trust_env,
        transport=transport,
    )
