"""Sending one alert to the configured targets: a signed JSON webhook and a Slack webhook."""

from __future__ import annotations

import httpx

from app.core.json_codec import dumps
from app.core.logging import get_logger, scrub_text
from app.core.settings import Settings
from app.destinations.signing import signature_headers

log = get_logger(__name__)
# An alert is small and must never hold a worker for long; an unsent one is retried later.
SEND_TIMEOUT = httpx.Timeout(5.0)


def targets_configured(settings: Settings) -> bool:
    """Whether any notification target is set."""
    return settings.alert_webhook_url is not None or settings.alert_slack_webhook_url is not None


async def send(
    http: httpx.AsyncClient, settings: Settings, message_id: str, payload: dict[str, object]
) -> bool:
    """Posts one alert to every target; True when at least one accepted it (2xx)."""
    delivered = False
    if settings.alert_webhook_url is not None and settings.alert_webhook_secret is not None:
        body = dumps(payload)
        headers = signature_headers(
            settings.alert_webhook_secret.get_secret_value(), message_id, body
        )
        headers["content-type"] = "application/json"
        delivered |= await _post(
            http, settings.alert_webhook_url.get_secret_value(), body, headers, "webhook"
        )
    if settings.alert_slack_webhook_url is not None:
        text = f":rotating_light: {payload['title']}\n{payload['summary']}"
        delivered |= await _post(
            http,
            settings.alert_slack_webhook_url.get_secret_value(),
            dumps({"text": text}),
            {"content-type": "application/json"},
            "slack",
        )
    return delivered


async def _post(
    http: httpx.AsyncClient, url: str, body: str, headers: dict[str, str], target: str
) -> bool:
    try:
        answer = await http.post(
            url, content=body, headers=headers, timeout=SEND_TIMEOUT, follow_redirects=False
        )
    except httpx.HTTPError as exc:
        # The URL itself may carry a token (Slack's do): never logged.
        log.warning("alert not delivered", target=target, error=type(exc).__name__)
        return False
    if 200 <= answer.status_code < 300:
        return True
    log.warning(
        "alert refused",
        target=target,
        status=answer.status_code,
        body=scrub_text(answer.text[:200]),
    )
    return False
