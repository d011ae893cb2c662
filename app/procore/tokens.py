"""Client-credentials tokens: one cached token per credential, shared by every task."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.core.logging import get_logger
from app.core.retry import (
    RetryPolicy,
    is_retryable_exception,
    is_retryable_status,
    parse_retry_after,
)
from app.procore.credentials import ProcoreCredentials, RequestStats
from app.procore.errors import (
    InvalidClientError,
    ProcoreAuthError,
    ProcoreError,
    ProcoreNetworkError,
    error_for_response,
    message_from_body,
    redact,
    request_id_of,
)

log = get_logger(__name__)

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path, not a secret
# A call refused on a replaced token must still know it had worked: keep a few per credential.
PROVEN_KEPT = 4


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when (monotonic seconds) it should be replaced."""

    value: str = field(repr=False)
    refresh_at: float
    expires_at: float


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None


class TokenCache:
    """Fetches, caches and refreshes client-credentials tokens, one per credential."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        login_url: str,
        retry: RetryPolicy,
        refresh_margin: float = 300.0,
        user_agent: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._login_url = login_url.rstrip("/")
        self._retry = retry
        self._refresh_margin = refresh_margin
        self._user_agent = user_agent
        self._clock = clock
        self._tokens: dict[tuple[str, str], AccessToken] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._invalid: dict[tuple[str, str], InvalidClientError] = {}
        # The latest tokens of each credential that Procore has accepted at least once.
        self._proven: dict[tuple[str, str], deque[str]] = {}

    def prove(self, creds: ProcoreCredentials, token: str) -> None:
        """Notes that Procore accepted this token (a later 401 means it expired or was revoked)."""
        proven = self._proven.setdefault(creds.cache_key(), deque(maxlen=PROVEN_KEPT))
        if token not in proven:
            proven.append(token)

    def proven(self, creds: ProcoreCredentials, token: str) -> bool:
        """Whether Procore ever accepted this token; a 401 to an unproven (fresh) token means
        the app is not installed, not that another token is needed."""
        return token in self._proven.get(creds.cache_key(), ())

    def ensure_valid(self, creds: ProcoreCredentials) -> None:
        """Raises the remembered InvalidClientError if these credentials were rejected."""
        known = self._invalid.get(creds.cache_key())
        if known is not None:
            raise InvalidClientError(
                known.message, status=known.status, request_id=known.request_id, path=known.path
            )

    def is_invalid(self, creds: ProcoreCredentials) -> bool:
        """Tells whether the token endpoint rejected these credentials (until told otherwise)."""
        return creds.cache_key() in self._invalid

    async def token(self, creds: ProcoreCredentials, stats: RequestStats | None = None) -> str:
        """Returns a usable token, fetching one (once, for all waiting tasks) if needed."""
        key = creds.cache_key()
        cached = self._fresh(key)
        if cached is not None:
            return cached.value
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            self.ensure_valid(creds)
            cached = self._fresh(key)
            if cached is not None:
                return cached.value
            fetched = await self._fetch(creds, stats)
            self._tokens[key] = fetched
            return fetched.value

    async def refresh(self, creds: ProcoreCredentials, stats: RequestStats | None = None) -> None:
        """Forgets the invalid mark and any cached token, then fetches a fresh token."""
        key = creds.cache_key()
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            self._invalid.pop(key, None)
            self._tokens.pop(key, None)
            self._tokens[key] = await self._fetch(creds, stats)

    def invalidate(self, creds: ProcoreCredentials, used: str | None = None) -> None:
        """Drops the cached token, but only if it is still the one that was refused."""
        key = creds.cache_key()
        cached = self._tokens.get(key)
        if cached is not None and (used is None or cached.value == used):
            del self._tokens[key]

    def forget(self, creds: ProcoreCredentials) -> None:
        """Forgets everything known about these credentials (they changed or were fixed)."""
        key = creds.cache_key()
        self._tokens.pop(key, None)
        self._invalid.pop(key, None)

    def _fresh(self, key: tuple[str, str]) -> AccessToken | None:
        cached = self._tokens.get(key)
        if cached is not None and self._clock() < cached.refresh_at:
            return cached
        return None

    async def _fetch(self, creds: ProcoreCredentials, stats: RequestStats | None) -> AccessToken:
        budget = self._retry.start(self._clock)
        secrets = (creds.client_secret,)
        form = {
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        }
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        while True:
            sent_at = self._clock()
            if stats is not None:
                stats.token_requests += 1
            try:
                # The pair's own environment's login host: never another environment's.
                token_url = (creds.login_url or self._login_url).rstrip("/") + TOKEN_PATH
                response = await self._http.post(token_url, data=form, headers=headers)
            except httpx.HTTPError as exc:
                # from None: the httpx error holds the request, whose body has the secret.
                network_error = ProcoreNetworkError(
                    f"token request failed: {type(exc).__name__}", path=TOKEN_PATH
                )
                delay = budget.backoff() if is_retryable_exception(exc) else None
                if delay is None:
                    raise network_error from None
                await asyncio.sleep(delay)
                continue
            if response.status_code == 200:
                return self._parse_token(response, sent_at, secrets)
            body = _json_or_none(response)
            if isinstance(body, dict) and body.get("error") == "invalid_client":
                error = InvalidClientError(
                    redact(message_from_body(body) or "invalid_client", secrets),
                    status=response.status_code,
                    request_id=request_id_of(response),
                    path=TOKEN_PATH,
                )
                self._invalid[creds.cache_key()] = error
                log.warning(
                    "procore rejected the credentials",
                    client_id=creds.client_id,
                    reason=error.message,
                )
                self._tokens.pop(creds.cache_key(), None)
                raise error
            if is_retryable_status(response.status_code):
                wait = parse_retry_after(response.headers.get("retry-after"))
                delay = budget.wait(wait) if wait is not None else budget.backoff()
                if delay is not None:
                    await asyncio.sleep(delay)
                    continue
            failed = error_for_response(response, TOKEN_PATH, secrets=secrets)
            if 400 <= response.status_code < 500:
                raise ProcoreAuthError(
                    f"token request refused: {failed.message}",
                    status=failed.status,
                    request_id=failed.request_id,
                    path=TOKEN_PATH,
                )
            raise failed

    def _parse_token(
        self, response: httpx.Response, sent_at: float, secrets: tuple[str, ...]
    ) -> AccessToken:
        body = _json_or_none(response)
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise ProcoreError(
                "token endpoint answered without an access_token",
                status=response.status_code,
                request_id=request_id_of(response),
                path=TOKEN_PATH,
            )
        try:
            lifetime = float(body.get("expires_in", 5400))
        except (TypeError, ValueError):
            lifetime = 5400.0
        # Refresh a little early; short-lived tokens get a proportionally short margin.
        margin = min(self._refresh_margin, lifetime / 10)
        return AccessToken(
            value, refresh_at=sent_at + lifetime - margin, expires_at=sent_at + lifetime
        )


class TokenRefresh:
    """Attaches a token to each attempt of one call and, on a 401, drops that token and lets
    the call try once more with a fresh one (the shape of httpx's `Auth.auth_flow`).

    Concurrent 401s on the same token refresh it once: the cache compares the token it holds
    with the one that failed.
    """

    def __init__(
        self, tokens: TokenCache, creds: ProcoreCredentials, stats: RequestStats | None
    ) -> None:
        self._tokens = tokens
        self._creds = creds
        self._stats = stats
        self._used = ""
        self._refreshed = False

    async def token(self) -> str:
        """The token for the next attempt."""
        self._used = await self._tokens.token(self._creds, self._stats)
        return self._used

    def accepted(self) -> None:
        """Procore answered this call: its token is proven."""
        self._tokens.prove(self._creds, self._used)

    def retry_after(self, response: httpx.Response) -> bool:
        """Whether the call should be sent again because its token was refused: once, and only
        when that token had worked before (it expired or was revoked)."""
        if response.status_code != 401 or self._refreshed:
            return False
        if not self._tokens.proven(self._creds, self._used):
            return False  # a fresh token refused: see `refused_fresh`
        self._tokens.invalidate(self._creds, used=self._used)
        self._refreshed = True
        return True

    def refused_fresh(self, response: httpx.Response) -> bool:
        """A 401 to a token Procore never accepted: the app is not installed in this company
        (procore-api.md sections 9 and 11); minting another token would only add 401s."""
        return response.status_code == 401 and not self._tokens.proven(self._creds, self._used)
