"""Signing in to the console over HTTP, and tokens with each role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.factories import ADMIN_TOKEN

VIEWER_TOKEN = "viewer-token-3f9a1c7e5b2d4086afe1c2"
OPERATOR_TOKEN = "operator-token-8c2e6a0f4b1d9735e7a3"
ROLE_TOKENS = [ADMIN_TOKEN, f"support:viewer:{VIEWER_TOKEN}", f"oncall:operator:{OPERATOR_TOKEN}"]
"""CONNECTOR_ADMIN_TOKENS of a service with one token per role (the bare one is `token-1`)."""

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF.search(page)
    assert found is not None, page[:500]
    return found.group(1)


@contextmanager
def console_client(
    base_url: str, token: str | None = None, **kwargs: Any
) -> Iterator[httpx.Client]:
    """A browser-like client (cookies, no auto-redirects), signed in when given a token."""
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=30, **kwargs) as client:
        if token is not None:
            answer = sign_in(client, token)
            assert answer.status_code == 303, answer.text[:500]
        yield client


def sign_in(client: httpx.Client, token: str, next_path: str = "") -> httpx.Response:
    """Fills in the sign-in form as a person would."""
    form = client.get("/console/sign-in")
    assert form.status_code == 200
    return client.post(
        "/console/sign-in",
        data={"csrf": csrf_of(form.text), "token": token, "next": next_path},
    )


def post_form(client: httpx.Client, page: str, action: str, **fields: str) -> httpx.Response:
    """Loads `page`, then submits `action` with the page's CSRF token and `fields`."""
    loaded = client.get(page)
    assert loaded.status_code == 200, loaded.text[:500]
    return client.post(action, data={"csrf": csrf_of(loaded.text), **fields})
