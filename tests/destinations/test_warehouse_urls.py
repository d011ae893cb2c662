"""The `dlt+...` URL grammar: each kind parses, bad URLs are refused with the reason, secrets
are redacted, the egress policy applies, and a missing extra names the extra to install."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from app.destinations import InvalidDestinationURL, redact_destination_url
from app.destinations.policy import DestinationPolicy
from app.destinations.urls import parse_destination_url, validate_destination_url
from app.destinations.warehouse.targets import WarehouseTarget
from tests.destinations.factories import make_destination

SERVICE_ACCOUNT = base64.urlsafe_b64encode(
    json.dumps({"private_key": "-----BEGIN PRIVATE KEY-----x", "client_email": "a@b"}).encode()
).decode()


class TestKinds:
    @pytest.mark.parametrize(
        ("url", "kind", "host"),
        [
            ("dlt+duckdb:///data/w.duckdb", "duckdb", None),
            (
                "dlt+postgres://etl:pw@db.example.com:6543/wh?sslmode=require",
                "postgres",
                "db.example.com",
            ),
            ("DLT+PostgreSQL://etl@db.example.com/wh", "postgres", "db.example.com"),
            (
                "dlt+filesystem+s3://k:s@my-bucket/raw?region=eu-west-1",
                "filesystem",
                "s3.eu-west-1.amazonaws.com",
            ),
            ("dlt+filesystem+file:///srv/lake", "filesystem", None),
        ],
    )
    def test_each_kind_parses(self, url: str, kind: str, host: str | None) -> None:
        target = parse_destination_url(url)
        assert isinstance(target, WarehouseTarget)
        assert (target.kind, target.host, target.dataset) == (kind, host, "procore")

    def test_postgres_credentials_and_options(self) -> None:
        target = parse_destination_url(
            "dlt+postgres://etl:pw@db.example.com:6543/wh?sslmode=require&dataset=raw"
        )
        assert isinstance(target, WarehouseTarget)
        assert target.credentials == "postgresql://etl:pw@db.example.com:6543/wh?sslmode=require"
        assert (target.port, target.dataset) == (6543, "raw")

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("dlt+oracle://x", "unsupported warehouse scheme"),
            ("dlt+duckdb://host/w.duckdb", "needs a path"),
            ("dlt+duckdb:///w.duckdb?dataset=Bad-Name", "dataset must be"),
            ("dlt+duckdb:///w.duckdb?color=red", "unsupported query parameter 'color'"),
            ("dlt+postgres://etl@db.example.com/wh?host=10.0.0.1", "unsupported query parameter"),
            ("dlt+postgres://etl@db.example.com/", "needs a database name"),
            ("dlt+postgres://etl@db.example.com/wh?sslrootcert=/etc/x", "sslrootcert"),
            ("dlt+bigquery://my-project?credentials=notjson", "service account JSON"),
            ("dlt+filesystem+s3://b/x", "bucket name"),
        ],
    )
    def test_bad_urls_say_what_is_wrong(self, url: str, message: str) -> None:
        with pytest.raises(InvalidDestinationURL, match=message):
            validate_destination_url(url)


class TestSecrets:
    @pytest.mark.parametrize(
        ("url", "secret"),
        [
            ("dlt+postgres://etl:Pa55word@db.example.com/wh", "Pa55word"),
            ("dlt+snowflake://etl:Pa55word@ab12345/analytics", "Pa55word"),
            (f"dlt+bigquery://my-project?credentials={SERVICE_ACCOUNT}", SERVICE_ACCOUNT),
            ("dlt+filesystem+s3://AKID:Pa55word@bucket/raw", "Pa55word"),
        ],
    )
    def test_redacted(self, url: str, secret: str) -> None:
        assert secret not in redact_destination_url(url)

    def test_describe_never_shows_the_password(self) -> None:
        destination = make_destination("dlt+postgres://etl:Pa55word@db.example.com/wh")
        assert "Pa55word" not in destination.describe()
        assert "etl:***@" in destination.describe()


class TestPolicyAndExtras:
    def test_a_private_host_is_refused(self) -> None:
        with pytest.raises(InvalidDestinationURL, match="private-network"):
            validate_destination_url("dlt+postgres://etl@10.1.2.3/wh", DestinationPolicy.of(None))

    def test_a_duckdb_file_outside_the_root_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidDestinationURL, match="outside CONNECTOR_DESTINATION_ROOT"):
            validate_destination_url(
                f"dlt+duckdb:///{tmp_path}/w.duckdb", DestinationPolicy.of(tmp_path / "root")
            )

    @pytest.mark.parametrize(
        ("url", "module", "extra"),
        [
            ("dlt+duckdb:///w.duckdb", "duckdb", "warehouse"),
            ("dlt+postgres://etl@db.example.com/wh", "psycopg2", "warehouse"),
            ("dlt+snowflake://etl@ab12345/db", "snowflake.connector", "snowflake"),
            ("dlt+bigquery://my-project", "google.cloud.bigquery", "bigquery"),
            ("s3://bucket/raw", "aiobotocore", "warehouse"),
        ],
    )
    def test_a_missing_extra_names_it(
        self, url: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, module, None)
        with pytest.raises(InvalidDestinationURL) as caught:
            validate_destination_url(url)
        assert f"pip install 'procore-dmsa-connector[{extra}]'" in str(caught.value)
