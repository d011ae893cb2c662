"""ProcoreClient: authenticated, paced, retried GETs and page-by-page listings."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from app.core.logging import get_logger
from app.core.retry import (
    RetryBudget,
    RetryPolicy,
    backoff_or_raise,
    is_retryable_exception,
    is_retryable_status,
)
from app.procore.connection import USER_AGENT
from app.procore.credentials import ProcoreCredentials, RequestStats
from app.procore.errors import (
    AppNotInstalledError,
    ProcoreBadRequestError,
    ProcoreNetworkError,
    ProcoreRateLimitError,
    error_for_response,
    message_from_response,
    request_id_of,
)
from app.procore.health import HealthCounters
from app.procore.paging import (
    Page,
    Params,
    decode_json,
    next_page_number,
    query_items,
    read_ahead,
    records_of,
    smaller_page,
)
from app.procore.ratelimit import (
    CompanyLimiter,
    RateLimiters,
    WindowWaitTooLongError,
    hold_for_window,
)
from app.procore.tokens import TokenCache, TokenRefresh

log = get_logger(__name__)
# Below this many requests left in the window, listings stop reading a page ahead.
PREFETCH_MIN_REMAINING = 10

# The only endpoints Procore answers without a Procore-Company-Id header.
COMPANYLESS_PATHS = frozenset({"/rest/v1.0/companies", "/rest/v1.0/me"})
COMPANIES_PATH = "/rest/v1.0/companies"
# The smallest page a 408 makes us ask for.
MIN_PER_PAGE = 25


def needs_company_header(path: str) -> bool:
    """Tells whether Procore requires ``Procore-Company-Id`` on a call to this path."""
    return path.split("?", 1)[0].rstrip("/") not in COMPANYLESS_PATHS


@dataclass
class _Call:
    """One logical GET and what its attempts share."""

    path: str
    url: str
    company_id: int | None
    query: list[tuple[str, str | int | float | bool | None]]
    stats: RequestStats | None
    header_ok: bool
    limiter: CompanyLimiter
    budget: RetryBudget
    auth: TokenRefresh
    method: str = "GET"
    body: Any = None


class ProcoreClient:
    """One client per external API: tokens, pacing, retries and health counters for Procore."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_url: str,
        login_url: str,
        per_page: int = 1000,
        health: HealthCounters | None = None,
        max_attempts: int = 6,
        max_retry_seconds: float = 300,
        token_refresh_margin: float = 300,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 30.0,
        limiters: RateLimiters | None = None,
        user_agent: str = USER_AGENT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_page < 1:
            raise ValueError("per_page must be at least 1")
        self._http = http
        self._api_url = api_url.rstrip("/")
        self.per_page = per_page
        self.health = health if health is not None else HealthCounters()
        self._retry = RetryPolicy(
            max_attempts=max(1, max_attempts),
            max_seconds=max_retry_seconds,
            base_delay=retry_base_delay,
            max_delay=retry_max_delay,
        )
        self._user_agent = user_agent
        self._tokens = TokenCache(
            http,
            login_url=login_url,
            retry=self._retry,
            refresh_margin=token_refresh_margin,
            user_agent=user_agent,
            clock=clock,
        )
        self._limiters = limiters if limiters is not None else RateLimiters()

    async def get(
        self,
        creds: ProcoreCredentials,
        path: str,
        *,
        company_id: int | None,
        params: Params | None = None,
        stats: RequestStats | None = None,
    ) -> Any:
        """Returns the decoded JSON of one GET (None for an empty body)."""
        response = await self._send(creds, path, company_id, query_items(params), stats)
        return decode_json(response, path)

    async def send(
        self,
        creds: ProcoreCredentials,
        method: str,
        path: str,
        *,
        company_id: int | None,
        params: Params | None = None,
        json: Any = None,
        stats: RequestStats | None = None,
    ) -> Any:
        """One call with any verb (the Webhooks API writes hooks and triggers), paced, counted
        and retried like a GET; returns the decoded JSON (None for an empty body)."""
        response = await self._send(
            creds, path, company_id, query_items(params), stats, method=method, body=json
        )
        return decode_json(response, path)

    async def paginate(
        self,
        creds: ProcoreCredentials,
        path: str,
        *,
        company_id: int | None,
        params: Params | None = None,
        stats: RequestStats | None = None,
        start_page: int = 1,
        per_page: int | None = None,
        max_per_page: int | None = None,
    ) -> AsyncIterator[Page]:
        """Yields a listing page by page from ``start_page``, following ``Link: next``.

        ``page`` and ``per_page`` in ``params`` are ignored: the client owns them. The page size
        is the client's, capped by ``max_per_page`` (an endpoint's documented maximum), unless
        ``per_page`` is given (a resumed listing keeps the size it started with). A 408 ("the
        request took too long") is read again at the same position with half the page size.

        The next page is read while the caller works on the current one (`read_ahead`), from
        the third page on: most units are one or two pages, and a run's units starting at once
        already overlap their requests, so an earlier read-ahead only puts more of them in
        flight when a 429 arrives. A read-ahead's failure surfaces on its page.
        """
        base = [(k, v) for k, v in query_items(params) if k not in ("page", "per_page")]

        async def read(page: int, size: int) -> Page:
            while True:
                query = [*base, ("page", str(page)), ("per_page", str(size))]
                try:
                    return await self._fetch_page(creds, path, company_id, query, stats, page, size)
                except ProcoreBadRequestError as exc:
                    smaller = (
                        smaller_page(page, size, floor=MIN_PER_PAGE) if exc.status == 408 else None
                    )
                    if smaller is None:
                        raise
                    log.warning(
                        "procore answered 408: smaller pages", path=path, per_page=smaller[1]
                    )
                    page, size = smaller

        size = per_page or min(self.per_page, max_per_page or self.per_page)
        first = max(1, start_page)
        async for page in read_ahead(
            read, first, size, lambda: self._prefetch_pays(creds, company_id)
        ):
            yield page

    def _prefetch_pays(self, creds: ProcoreCredentials, company_id: int | None) -> bool:
        """Whether to fetch the next page ahead: not when the window is nearly spent, where the
        read-ahead would mostly meet the pause and be thrown away (and read again after it)."""
        remaining = self.limiter(creds, company_id).remaining
        return remaining is None or remaining > PREFETCH_MIN_REMAINING

    async def _fetch_page(
        self,
        creds: ProcoreCredentials,
        path: str,
        company_id: int | None,
        query: list[tuple[str, str | int | float | bool | None]],
        stats: RequestStats | None,
        page: int,
        per_page: int,
    ) -> Page:
        response = await self._send(creds, path, company_id, query, stats)
        records, is_list = records_of(decode_json(response, path))
        if not is_list:
            # A single object: this endpoint does not page.
            return Page(records=records, page=page, next_page=None, total=None, per_page=per_page)
        next_page, total = next_page_number(page, len(records), response, per_page)
        return Page(records=records, page=page, next_page=next_page, total=total, per_page=per_page)

    async def list_companies(
        self,
        creds: ProcoreCredentials,
        *,
        company_id: int | None = None,
        stats: RequestStats | None = None,
    ) -> list[dict[str, Any]]:
        """Returns every company where the app is installed, free ones included (all pages).

        `company_id` (any company the app knows) is sent as `Procore-Company-Id`, which DMSA
        apps need when their companies span Procore regions (procore/documentation:
        oauth/oauth_client_credentials.md); free companies are left out unless asked for.
        """
        companies: list[dict[str, Any]] = []
        params = {"include_free_companies": "true"}
        async for page in self.paginate(
            creds, COMPANIES_PATH, company_id=company_id, params=params, stats=stats
        ):
            companies.extend(page.records)
        return companies

    async def check_credentials(
        self, creds: ProcoreCredentials, *, stats: RequestStats | None = None
    ) -> None:
        """Fetches a fresh token; raises InvalidClientError with Procore's reason if refused."""
        await self._tokens.refresh(creds, stats)

    async def invalidate_token(self, creds: ProcoreCredentials) -> None:
        """Drops the cached token and any invalid mark; the next call asks Procore afresh."""
        self._tokens.forget(creds)

    async def forget_credentials(self, creds: ProcoreCredentials) -> None:
        """Forgets the token and any invalid mark of these credentials (they were changed)."""
        self._tokens.forget(creds)

    def credentials_invalid(self, creds: ProcoreCredentials) -> bool:
        """Tells whether these credentials were rejected and are not being called any more."""
        return self._tokens.is_invalid(creds)

    def limiter(self, creds: ProcoreCredentials, company_id: int | None) -> CompanyLimiter:
        """Returns the rate limiter shared by every call with this token for this company."""
        return self._limiters.get(creds.client_id, company_id)

    async def _send(
        self,
        creds: ProcoreCredentials,
        path: str,
        company_id: int | None,
        query: list[tuple[str, str | int | float | bool | None]],
        stats: RequestStats | None,
        *,
        method: str = "GET",
        body: Any = None,
    ) -> httpx.Response:
        """One logical GET: attempts until a 2xx, an answer not worth retrying, or the budget
        is spent. Authentication (`TokenRefresh`), pacing (`_attempt`) and what to do with a
        failed answer (`_after_failure`) each live in their own place."""
        header_needed = needs_company_header(path)
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        if company_id is None and header_needed:
            raise ValueError(f"company_id is required for {path}")
        self._tokens.ensure_valid(creds)
        call = _Call(
            path=path,
            url=(creds.api_url or self._api_url).rstrip("/") + path,
            company_id=company_id,
            query=query,
            stats=stats,
            header_ok=company_id is not None or not header_needed,
            limiter=self.limiter(creds, company_id),
            budget=self._retry.start(),
            auth=TokenRefresh(self._tokens, creds, stats),
            method=method,
            body=body,
        )
        while True:
            response = await self._attempt(call)
            if response is None:
                continue  # no answer, and a retry is due
            if response.status_code < 300:
                call.auth.accepted()
                return response
            if call.auth.retry_after(response):
                continue
            if call.auth.refused_fresh(response):
                raise AppNotInstalledError(
                    "Procore refused a freshly minted token: the app is not installed or not "
                    f"connected in this company ({message_from_response(response)})",
                    status=401,
                    request_id=request_id_of(response),
                    path=call.path,
                )
            await self._after_failure(call, response)

    async def _attempt(self, call: _Call) -> httpx.Response | None:
        """Paces, sends one GET and counts the answer; None after a retryable network failure."""
        try:
            await call.limiter.acquire(max_wait=call.budget.seconds_left())
        except WindowWaitTooLongError as exc:
            raise ProcoreRateLimitError(
                f"rate limit spent for this company; {exc}", path=call.path, retry_after=exc.seconds
            ) from None
        response: httpx.Response | None = None
        failure: httpx.HTTPError | None = None
        try:
            # Taken after the pacing wait, so a long wait never sends a stale token.
            token = await call.auth.token()
            response = await self._http.request(
                call.method,
                call.url,
                params=call.query,
                headers=self._headers(token, call.company_id),
                json=call.body,
            )
        except httpx.HTTPError as exc:
            failure = exc
        finally:
            call.limiter.release(
                response.headers if response is not None else None,
                response.status_code if response is not None else None,
            )
        status = response.status_code if response is not None else 0
        self._count(call.stats, call.company_id, status, call.header_ok)
        if response is not None:
            return response
        assert failure is not None
        error = ProcoreNetworkError(
            f"no answer from Procore: {type(failure).__name__}", path=call.path
        )
        if not is_retryable_exception(failure):
            raise error from None  # the httpx error holds the request and its token
        await backoff_or_raise(call.budget, error, log)
        return None

    async def _after_failure(self, call: _Call, response: httpx.Response) -> None:
        """Waits before the next attempt, or raises the answer's error."""
        status = response.status_code
        if status == 429 or (status == 503 and "retry-after" in response.headers):
            hold_for_window(call.budget, call.limiter, response, call.path)
            return
        if is_retryable_status(status):
            await backoff_or_raise(call.budget, error_for_response(response, call.path), log)
            return
        raise error_for_response(response, call.path)

    def _headers(self, token: str, company_id: int | None) -> dict[str, str]:
        sent = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": self._user_agent,
        }
        if company_id is not None:
            sent["Procore-Company-Id"] = str(company_id)
        return sent

    def _count(
        self, stats: RequestStats | None, company_id: int | None, status: int, header_ok: bool
    ) -> None:
        if stats is not None:
            stats.requests += 1
            if status:
                stats.record_status(status)
            else:
                stats.network_errors += 1
        self.health.record(company_id, status, company_header_sent=header_ok)
