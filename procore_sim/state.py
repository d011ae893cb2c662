"""The Simulator: thread-safe state shared by the HTTP app, the control API and tests."""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from procore_sim.budget import view_rows
from procore_sim.catalog import STREAMS
from procore_sim.config import SimulatorConfig
from procore_sim.faults import FaultPlan, Faults, plan_faults
from procore_sim.generate.common import iso
from procore_sim.ratelimit import BucketKey, Decision, RateLimiter
from procore_sim.store import RecordStore, Stored, UnknownRecordError, View
from procore_sim.webhooks.hub import WebhookHub
from procore_sim.webhooks.resources import STREAM_RESOURCES

NOT_CONNECTED = "App is not connected to this company"
NOT_INSTALLED = "You do not have access to this company: the app is not installed"
LISTED_STATUSES = ("installed", "disconnected")

__all__ = ["NOT_CONNECTED", "NOT_INSTALLED", "Simulator", "UnknownRecordError"]


@dataclass
class IssuedToken:
    """An access token minted by /oauth/token."""

    client_id: str
    created_at: float
    expires_at: float


class Simulator:
    """Companies, records, tokens, limits, faults and the request log of one fake Procore."""

    def __init__(
        self, config: SimulatorConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config or SimulatorConfig()
        self.clock = clock
        self.lock = threading.RLock()
        # Set by the webhook dispatcher while it runs: wakes it from any thread.
        self.webhook_waker: Callable[[], None] | None = None
        self.reset()

    def reset(self) -> None:
        """Back to the freshly generated state: records, installs, tokens, limits, faults, log."""
        with self.lock:
            cfg = self.config
            self.store = RecordStore(cfg, self.clock())
            never = range(cfg.companies, cfg.companies + cfg.uninstalled_companies)
            self._status = {
                c["id"]: ("not_installed" if i in never else "installed")
                for i, c in enumerate(self.store.companies)
            }
            self._free = {
                c["id"]
                for i, c in enumerate(self.store.companies)
                if i >= cfg.companies + cfg.uninstalled_companies
            }
            self._empty_company_answers = 0
            self._webhooks_denied: set[int] = (
                set() if cfg.webhooks_permission else set(self._status)
            )
            self.webhooks = WebhookHub(notify=self._wake_webhooks)
            self._forbidden_projects: set[int] = set()
            self._tokens: dict[str, IssuedToken] = {}
            self.token_lifetime = cfg.token_lifetime
            self._clients = {cfg.client_id: cfg.client_secret, **dict(cfg.extra_clients)}
            self.limiter = RateLimiter(
                cfg.hourly_limit,
                cfg.spike_limit,
                cfg.spike_window_seconds,
                cfg.hourly_window_seconds,
            )
            self.faults = Faults(too_large_per_page=cfg.too_large_per_page)
            self._fault_rng = random.Random(f"{cfg.seed}:faults")
            self._log: deque[dict[str, Any]] = deque(maxlen=cfg.max_log_entries)

    # ---- companies and projects ---------------------------------------------------------
    def companies(self) -> list[dict[str, Any]]:
        """Every generated company with its install status (installed/connected flags)."""
        with self.lock:
            out = []
            for company in self.store.companies:
                status = self._status[company["id"]]
                out.append(
                    {
                        **company,
                        "status": status,
                        "installed": status in LISTED_STATUSES,
                        "connected": status == "installed",
                        "free": company["id"] in self._free,
                        "webhooks_permission": company["id"] not in self._webhooks_denied,
                    }
                )
            return out

    def company_ids(self) -> list[int]:
        """Ids of every generated company (installed or not)."""
        with self.lock:
            return [c["id"] for c in self.store.companies]

    def listed_companies(self, *, include_free: bool = True) -> list[dict[str, Any]]:
        """Companies /rest/v1.0/companies shows: those where the app is installed."""
        with self.lock:
            return [
                c
                for c in self.store.companies
                if self._status[c["id"]] in LISTED_STATUSES
                and (include_free or c["id"] not in self._free)
            ]

    def answer_empty_companies(self, times: int = 1) -> int:
        """The next `times` /companies answers are empty (a one-off glitch); returns the count."""
        with self.lock:
            self._empty_company_answers += max(int(times), 0)
            return self._empty_company_answers

    def take_empty_companies_answer(self) -> bool:
        """Whether this /companies answer is to be empty (uses up one armed answer)."""
        with self.lock:
            if self._empty_company_answers <= 0:
                return False
            self._empty_company_answers -= 1
            return True

    def company_status(self, company_id: int) -> str:
        """installed, disconnected, uninstalled, not_installed or unknown."""
        with self.lock:
            return self._status.get(company_id, "unknown")

    def company_error(self, company_id: int) -> str | None:
        """The 403 message for a company the app may not call, or None when it may."""
        status = self.company_status(company_id)
        if status == "installed":
            return None
        if status in ("uninstalled", "disconnected"):
            return NOT_CONNECTED
        return NOT_INSTALLED

    def _set_status(self, company_id: int, status: str) -> None:
        with self.lock:
            if company_id not in self._status:
                raise UnknownRecordError(f"no company {company_id}")
            self._status[company_id] = status

    def install_company(self, company_id: int) -> None:
        """Installs (or reinstalls and reconnects) the app in a company."""
        self._set_status(company_id, "installed")

    def uninstall_company(self, company_id: int) -> None:
        """Uninstalls: the company leaves /companies and answers 403 not connected."""
        self._set_status(company_id, "uninstalled")

    def disconnect_company(self, company_id: int) -> None:
        """Disconnects: still listed by /companies but every call answers 403 not connected."""
        self._set_status(company_id, "disconnected")

    def reconnect_company(self, company_id: int) -> None:
        """The admin reconnects the app in App Management: calls work again."""
        self._set_status(company_id, "installed")

    def set_webhooks_permission(self, company_id: int, granted: bool) -> None:
        """Grants or withdraws the app's "Webhooks API" permission in a company."""
        with self.lock:
            if company_id not in self._status:
                raise UnknownRecordError(f"no company {company_id}")
            if granted:
                self._webhooks_denied.discard(company_id)
            else:
                self._webhooks_denied.add(company_id)

    def webhooks_permitted(self, company_id: int) -> bool:
        """Whether the app may use the Webhooks API in a company."""
        with self.lock:
            return company_id not in self._webhooks_denied

    def me_id(self) -> int:
        """The DMSA service user's id (GET /rest/v1.0/me)."""
        return self.config.seed * 1000 + 7

    def project_ids(self, company_id: int) -> list[int]:
        """Every live project of a company, permitted or not."""
        with self.lock:
            return self.store.project_ids(company_id)

    def project_company(self, project_id: int) -> int | None:
        """The company a live project belongs to."""
        with self.lock:
            return self.store.project_company(project_id)

    def set_project_permitted(self, company_id: int, project_id: int, permitted: bool) -> None:
        """Grants or withdraws the app's access to one project."""
        with self.lock:
            if self.store.project_company(project_id) != company_id:
                raise UnknownRecordError(f"no project {project_id} in company {company_id}")
            if permitted:
                self._forbidden_projects.discard(project_id)
            else:
                self._forbidden_projects.add(project_id)

    def project_permitted(self, project_id: int) -> bool:
        """Whether the app may see a project."""
        with self.lock:
            return project_id not in self._forbidden_projects

    # ---- records ------------------------------------------------------------------------
    def records(
        self,
        stream: str,
        company_id: int,
        project_id: int | None = None,
        *,
        include_deleted: bool = False,
        budget_view_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Ground truth: every record of a stream as the API serves it with every filter open.

        That is: inactive projects, users and vendors included, manpower logs of every status,
        commitments as view=extended serves them, budget detail rows of every view (or of
        budget_view_id only); ordered by id.
        """
        if stream == "companies":
            return [dict(c) for c in self.listed_companies()]
        with self.lock:
            if stream == "budget_detail_rows" and self.config.budget_rows_repeat_ids:
                return self._budget_rows(company_id, project_id, budget_view_id)
            view: View = "all" if include_deleted else "active"
            found: list[Stored] = []
            for part in self.store.partitions_of(stream, company_id, project_id):
                found.extend(part.view(view))
            if budget_view_id is not None:
                found = [s for s in found if s.data.get("budget_view_id") == budget_view_id]
            found.sort(key=lambda s: int(s.data["id"]))
            return [json.loads(s.raw) for s in found]

    def _budget_rows(
        self, company_id: int, project_id: int | None, budget_view_id: int | None
    ) -> list[dict[str, Any]]:
        month = iso(self.store.anchor)[:7]
        rows: list[dict[str, Any]] = []
        for part in self.store.partitions_of("budget_detail_rows", company_id, project_id):
            _, cid, pid = part.key
            for view in self.store.partition("budget_views", cid, pid).view("active"):
                if budget_view_id is None or view.data["id"] == budget_view_id:
                    rows.extend(json.loads(raw) for raw in view_rows(part, view.data, month))
        rows.sort(key=lambda r: (r["id"] is None, r["id"] or 0))
        return rows

    def create_record(
        self,
        stream: str,
        company_id: int,
        project_id: int | None = None,
        fields: dict[str, Any] | None = None,
        *,
        source: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Creates a record (fresh id, created_at = updated_at = now); webhooks see a create."""
        with self.lock:
            record = dict(self.store.create(stream, company_id, project_id, fields, self.clock()))
            self._emit(stream, record["id"], "create", source)
            return record

    def update_record(
        self,
        stream: str,
        record_id: int,
        fields: dict[str, Any] | None = None,
        *,
        source: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Changes fields of a record and bumps its updated_at to now; webhooks see an update."""
        with self.lock:
            record = dict(self.store.update(stream, record_id, fields, self.clock()))
            self._emit(stream, record_id, "update", source)
            return record

    def delete_record(
        self, stream: str, record_id: int, *, source: dict[str, Any] | None = None
    ) -> None:
        """Deletes a record: soft where Procore keeps deleted records visible, else hard."""
        with self.lock:
            company_id, project_id = self.store.owner(stream, record_id)
            self.store.delete(stream, record_id, self.clock())
            self._emit(stream, record_id, "delete", source, (company_id, project_id))

    def _emit(
        self,
        stream: str,
        record_id: int,
        event_type: str,
        source: dict[str, Any] | None,
        owner: tuple[int, int] | None = None,
    ) -> None:
        company_id, project_id = owner or self.store.owner(stream, record_id)
        if stream == "projects":
            project_id = record_id
        people = self.store.people(company_id)
        user_id = int(people[0]["id"]) if people else self.me_id()
        metadata = {"source_user_id": user_id, **(source or {})}
        self.webhooks.emit(
            company_id=company_id,
            project_id=project_id or None,
            resource_name=STREAM_RESOURCES[stream][0],
            resource_id=record_id,
            event_type=event_type,
            user_id=user_id,
            now=self.clock(),
            metadata=metadata,
        )

    def _wake_webhooks(self) -> None:
        waker = self.webhook_waker
        if waker is not None:
            waker()

    @staticmethod
    def streams() -> list[str]:
        """Names of every stream served."""
        return list(STREAMS)

    # ---- auth ---------------------------------------------------------------------------
    def clients(self) -> list[dict[str, str]]:
        """The app credentials /oauth/token accepts."""
        with self.lock:
            return [{"client_id": k, "client_secret": v} for k, v in self._clients.items()]

    def check_client(self, client_id: str | None, client_secret: str | None) -> bool:
        """Whether a client id and secret pair is valid."""
        with self.lock:
            known = self._clients.get(client_id or "")
        return known is not None and secrets.compare_digest(known, client_secret or "")

    def issue_token(self, client_id: str) -> dict[str, Any]:
        """Mints an access token for a client (no refresh token, as for DMSA)."""
        with self.lock:
            now = self.clock()
            token = secrets.token_urlsafe(32)
            self._tokens[token] = IssuedToken(client_id, now, now + self.token_lifetime)
            return {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.token_lifetime,
                "created_at": int(now),
            }

    def token_owner(self, token: str) -> tuple[IssuedToken | None, str]:
        """The token's record when valid, else None and why ("invalid" or "expired")."""
        with self.lock:
            issued = self._tokens.get(token)
            if issued is None:
                return None, "invalid"
            if self.clock() >= issued.expires_at:
                return None, "expired"
            return issued, ""

    def issued_tokens(self) -> list[str]:
        """Every access token minted so far (tests check none of them leaks anywhere)."""
        with self.lock:
            return list(self._tokens)

    def set_token_lifetime(self, seconds: int) -> None:
        """Lifetime of tokens issued from now on."""
        with self.lock:
            self.token_lifetime = int(seconds)

    def expire_tokens(self) -> None:
        """Makes every issued token expire now (the next call with one answers 401)."""
        with self.lock:
            now = self.clock()
            for issued in self._tokens.values():
                issued.expires_at = min(issued.expires_at, now)

    # ---- limits and faults --------------------------------------------------------------
    def set_limits(
        self, hourly: int | None = None, spike: int | None = None, spike_window_seconds: float = 10
    ) -> None:
        """Changes the rate limits (None keeps a limit) and restarts every window."""
        with self.lock:
            self.limiter.configure(hourly, spike, spike_window_seconds)

    def rate_hit(self, key: BucketKey) -> Decision:
        """Counts one /rest/ request against its bucket."""
        with self.lock:
            return self.limiter.hit(key, self.clock())

    def rate_peek(self, key: BucketKey) -> dict[str, str]:
        """Rate-limit headers of a bucket, without counting."""
        with self.lock:
            return self.limiter.peek(key, self.clock())

    def set_faults(
        self,
        latency_ms: float = 0,
        jitter_ms: float = 0,
        error_rate: float = 0.0,
        error_status: int = 500,
        drop_rate: float = 0.0,
        slow_headers_ms: float = 0,
        unavailable: bool = False,
        retry_after: int = 5,
        path_prefix: str | None = None,
        too_large_per_page: int | None = None,
    ) -> None:
        """Replaces the injected faults; no arguments clears them all."""
        with self.lock:
            self.faults = Faults(
                latency_ms,
                jitter_ms,
                error_rate,
                error_status,
                drop_rate,
                slow_headers_ms,
                unavailable,
                retry_after,
                path_prefix,
                too_large_per_page,
            )

    def plan_faults(self, path: str) -> FaultPlan:
        """Draws the faults of one request from the seeded generator."""
        with self.lock:
            return plan_faults(self.faults, self._fault_rng, path)

    # ---- request log --------------------------------------------------------------------
    def log_request(self, entry: dict[str, Any]) -> None:
        """Appends one API request to the log."""
        with self.lock:
            self._log.append(entry)

    def request_log(
        self,
        path_prefix: str | None = None,
        company_id: int | None = None,
        status: int | None = None,
    ) -> list[dict[str, Any]]:
        """Logged API requests (oldest first), optionally filtered."""
        with self.lock:
            entries = list(self._log)
        wanted = None if company_id is None else str(company_id)
        return [
            dict(e)
            for e in entries
            if (path_prefix is None or e["path"].startswith(path_prefix))
            and (wanted is None or e["company_header"] == wanted)
            and (status is None or e["status"] == status)
        ]

    def clear_request_log(self) -> None:
        """Forgets every logged request."""
        with self.lock:
            self._log.clear()
