"""Standard Webhooks signing and verification."""

from __future__ import annotations

import base64
import time

import pytest

from app.destinations.signing import (
    WebhookVerificationError,
    decode_secret,
    generate_signing_secret,
    sign,
    signature_headers,
    verify,
)

# The example from the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def spec_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    headers.update(overrides)
    return headers


class TestSign:
    def test_matches_the_specification_example(self) -> None:
        assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE

    def test_accepts_bytes_and_str_bodies_alike(self) -> None:
        assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.encode()) == SPEC_SIGNATURE

    def test_generated_secrets_are_32_random_bytes(self) -> None:
        first, second = generate_signing_secret(), generate_signing_secret()
        assert first.startswith("whsec_")
        assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
        assert first != second

    def test_a_secret_without_prefix_is_the_same_key(self) -> None:
        assert decode_secret(SPEC_SECRET) == decode_secret(SPEC_SECRET.removeprefix("whsec_"))

    @pytest.mark.parametrize("secret", ["whsec_", "whsec_not base64!", "whsec_ÿÿ"])
    def test_refuses_malformed_secrets(self, secret: str) -> None:
        with pytest.raises(ValueError):
            decode_secret(secret)


class TestVerify:
    def test_accepts_the_specification_example(self) -> None:
        verify(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SPEC_TIMESTAMP + 10)

    def test_round_trips_with_signature_headers(self) -> None:
        secret = generate_signing_secret()
        body = b'{"type":"records.batch"}'
        verify(secret, signature_headers(secret, "msg_1", body), body)

    def test_header_names_are_case_insensitive(self) -> None:
        headers = {name.title(): value for name, value in spec_headers().items()}
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)

    def test_one_matching_signature_among_several_is_enough(self) -> None:
        signature = f"v1,bm9wZQ== v2,whatever {SPEC_SIGNATURE}"
        verify(
            SPEC_SECRET,
            spec_headers(**{"webhook-signature": signature}),
            SPEC_BODY,
            now=SPEC_TIMESTAMP,
        )

    @pytest.mark.parametrize(
        ("headers", "body", "message"),
        [
            (spec_headers(), '{"test": 2432232315}', "no webhook-signature matches"),
            (
                spec_headers(**{"webhook-id": "msg_other"}),
                SPEC_BODY,
                "no webhook-signature matches",
            ),
            (
                spec_headers(**{"webhook-signature": "v2," + SPEC_SIGNATURE[3:]}),
                SPEC_BODY,
                "no webhook-signature",
            ),
            (
                spec_headers(**{"webhook-signature": "v1,ünïcode"}),
                SPEC_BODY,
                "no webhook-signature",
            ),
            (spec_headers(**{"webhook-timestamp": "1614265330.5"}), SPEC_BODY, "not a Unix time"),
            (spec_headers(**{"webhook-timestamp": "-1"}), SPEC_BODY, "not a Unix time"),
            (
                {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP)},
                SPEC_BODY,
                "missing webhook-signature",
            ),
            ({}, SPEC_BODY, "missing webhook-id"),
        ],
    )
    def test_refuses_bad_messages(self, headers: dict[str, str], body: str, message: str) -> None:
        with pytest.raises(WebhookVerificationError, match=message):
            verify(SPEC_SECRET, headers, body, now=SPEC_TIMESTAMP)

    def test_refuses_a_stale_timestamp(self) -> None:
        with pytest.raises(WebhookVerificationError, match="too old"):
            verify(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SPEC_TIMESTAMP + 301)

    def test_refuses_a_timestamp_from_the_future(self) -> None:
        with pytest.raises(WebhookVerificationError, match="future"):
            verify(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SPEC_TIMESTAMP - 301)

    def test_tolerance_is_configurable(self) -> None:
        verify(
            SPEC_SECRET,
            spec_headers(),
            SPEC_BODY,
            tolerance_seconds=3600,
            now=SPEC_TIMESTAMP + 3000,
        )

    def test_refuses_the_right_signature_under_another_secret(self) -> None:
        with pytest.raises(WebhookVerificationError):
            verify(generate_signing_secret(), spec_headers(), SPEC_BODY, now=SPEC_TIMESTAMP)

    def test_uses_the_clock_by_default(self) -> None:
        with pytest.raises(WebhookVerificationError, match="too old"):
            verify(SPEC_SECRET, spec_headers(), SPEC_BODY)
        assert time.time() > SPEC_TIMESTAMP


class TestSeveralSecrets:
    def test_each_secret_signs_and_any_standard_verifier_accepts_either(self) -> None:
        from standardwebhooks.webhooks import Webhook

        new, old = generate_signing_secret(), generate_signing_secret()
        body = b'{"type":"records.batch","title":"Zo\\u00eb"}'
        headers = signature_headers([new, old], "msg_1", body)
        assert len(headers["webhook-signature"].split()) == 2
        for secret in (new, old):
            verify(secret, headers, body)
            Webhook(secret).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            verify(generate_signing_secret(), headers, body)

    def test_a_body_that_is_not_utf8_fails_verification_cleanly(self) -> None:
        secret = generate_signing_secret()
        headers = signature_headers(secret, "msg_1", b"{}")
        with pytest.raises(WebhookVerificationError, match="not UTF-8"):
            verify(secret, headers, b"\xff\xfe")
