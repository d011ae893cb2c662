"""Validation and redaction of destination URLs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.destinations import (
    InvalidDestinationURL,
    redact_destination_url,
    validate_destination_url,
)
from app.destinations.urls import FileTarget, SQLTarget, parse_destination_url
from procore_sim.server import SimulatorServer
from tests.factories import RunningService, install_event


class TestValidateDestinationURL:
    @pytest.mark.parametrize(
        ("url", "normalised"),
        [
            ("sqlite:///data/out.db", "sqlite:///data/out.db"),
            ("  SQLITE:////var/out.db  ", "sqlite:////var/out.db"),
            ("sqlite:///out.db?table_prefix=procore_", "sqlite:///out.db?table_prefix=procore_"),
            ("postgresql://u:pw@db:5432/wh", "postgresql://u:pw@db:5432/wh"),
            ("postgres://u@db/wh", "postgresql://u@db/wh"),
            ("postgresql+psycopg://u@db/wh?schema=raw", "postgresql+psycopg://u@db/wh?schema=raw"),
            ("file:///var/lib/out/", "file:///var/lib/out"),
            ("file:///var/lib/out?format=jsonl", "file:///var/lib/out"),
            ("https://Receiver.Example.com/hook?x=1", "https://receiver.example.com/hook?x=1"),
            ("https://receiver.example.com", "https://receiver.example.com/"),
            ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),
            ("http://localhost/hook", "http://localhost/hook"),
            ("http://[::1]:9000/hook", "http://[::1]:9000/hook"),
        ],
    )
    def test_accepts_and_normalises(self, url: str, normalised: str) -> None:
        assert validate_destination_url(url) == normalised

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            (
                "ftp://files.example.com/x",
                "destination_url: unsupported scheme 'ftp'; use sqlite:///, postgresql://, "
                "file:///, https://, s3:// or dlt+<warehouse>://",
            ),
            ("", "must not be empty"),
            ("just-a-path", "no scheme"),
            ("sqlite://", "sqlite needs a file path"),
            ("sqlite:///:memory:", "sqlite needs a file path"),
            ("sqlite:///x.db?schema=raw", "schema is only supported on PostgreSQL"),
            ("sqlite:///x.db?mode=ro", "unsupported query parameter 'mode'"),
            ("sqlite:///x.db?table_prefix=Bad-Prefix", "table_prefix must be lower-case"),
            ("postgresql://db/wh?schema=Raw;drop", "schema must be lower-case"),
            ("mysql://db/wh", "unsupported scheme 'mysql'"),
            ("postgresql+pg8000://db/wh", "unsupported PostgreSQL driver 'pg8000'"),
            ("file://relative/dir", "absolute path"),
            ("file:///out?format=csv", "unsupported file format 'csv'"),
            ("file:///out?compress=1", "unsupported query parameter 'compress'"),
            ("http://receiver.example.com/hook", "only allowed for loopback hosts"),
            ("https:///hook", "need a host"),
            ("https://receiver.example.com:99999/", "port"),
            ("https://receiver.example.com/#frag", "fragment"),
            ("https://receiver.example.com/a b", "spaces"),
            ("file:///", "file system's root"),
            ("file:////", "file system's root"),
            ("file:///srv/out%00/x", "NUL"),
            ("sqlite:///data/x%00.db", "NUL"),
            ("sqlite:///x.db?table_prefix=abc%0A", "table_prefix must be lower-case"),
            ("postgresql://db/wh?schema=raw%0A", "schema must be lower-case"),
        ],
    )
    def test_refuses_with_a_specific_message(self, url: str, message: str) -> None:
        with pytest.raises(InvalidDestinationURL, match=r"^destination_url: ") as caught:
            validate_destination_url(url)
        assert message in str(caught.value)

    @pytest.mark.parametrize(
        "url",
        [
            "postgresql+pg8000://admin:s3cr3t-pw@db/wh",
            "postgresql://admin:s3cr3t-pw@db/wh?schema=Bad!",
            "http://admin:s3cr3t-pw@example.com/hook",
            "sqlite:///x.db?password=s3cr3t-pw",
        ],
    )
    def test_messages_never_echo_a_password(self, url: str) -> None:
        with pytest.raises(InvalidDestinationURL) as caught:
            validate_destination_url(url)
        assert "s3cr3t-pw" not in str(caught.value)

    def test_is_a_value_error(self) -> None:
        with pytest.raises(ValueError):
            validate_destination_url("gopher://x")

    def test_parses_sql_options(self) -> None:
        target = parse_destination_url(
            "postgresql://u@db/wh?schema=raw&table_prefix=pc_&sslmode=require"
        )
        assert isinstance(target, SQLTarget)
        assert (target.dialect, target.schema, target.table_prefix) == ("postgresql", "raw", "pc_")
        assert target.url.drivername == "postgresql+psycopg"
        assert dict(target.url.query) == {"sslmode": "require"}

    def test_parses_sqlite_to_aiosqlite(self) -> None:
        target = parse_destination_url("sqlite:///data/out.db")
        assert isinstance(target, SQLTarget)
        assert target.url.drivername == "sqlite+aiosqlite"
        assert target.url.database == "data/out.db"

    def test_parses_file_paths_with_escapes(self) -> None:
        target = parse_destination_url("file:///srv/procore%20exports")
        assert isinstance(target, FileTarget)
        assert str(target.directory) == "/srv/procore exports"


class TestRedactDestinationURL:
    @pytest.mark.parametrize(
        ("url", "redacted"),
        [
            ("postgresql://etl:hunter2@db:5432/wh", "postgresql://etl:***@db:5432/wh"),
            ("postgresql://etl:p@ss@db/wh", "postgresql://etl:***@db/wh"),
            ("postgresql://etl@db/wh?password=hunter2", "postgresql://etl@db/wh?password=***"),
            ("https://user:pw@receiver.example.com/h", "https://***@receiver.example.com/h"),
            ("https://tok3n@receiver.example.com/h", "https://***@receiver.example.com/h"),
            (
                "https://receiver.example.com/h?code=abc&api_key=k&region=eu",
                "https://receiver.example.com/h?code=***&api_key=***&region=eu",
            ),
            ("sqlite:////abs/path.db", "sqlite:////abs/path.db"),
            ("file:///srv/out?format=parquet", "file:///srv/out?format=parquet"),
        ],
    )
    def test_hides_secrets(self, url: str, redacted: str) -> None:
        assert redact_destination_url(url) == redacted

    def test_never_raises(self) -> None:
        assert redact_destination_url("::not a url::") == "::not a url::"


class TestFullMatches:
    def test_a_trailing_newline_never_passes_an_identifier_check(self) -> None:
        from app.destinations.records import check_run_id, check_stream_name
        from app.destinations.urls import check_table_prefix

        for check, value in (
            (check_stream_name, "rfis\n"),
            (check_run_id, "run-1\n"),
            (check_table_prefix, "procore_\n"),
        ):
            with pytest.raises(ValueError, match="must be"):
                check(value)


class TestAdminAnswers:
    @pytest.fixture
    def service_overrides(self, tmp_path: Path) -> dict[str, Any]:
        return {"destination_root": str(tmp_path)}

    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("file:///", "root"),
            ("file:///tmp/a%00b", "NUL"),
            ("https://169.254.169.254/latest", "link-local"),
            ("sqlite:////etc/connector.db", "outside CONNECTOR_DESTINATION_ROOT"),
        ],
    )
    def test_a_refused_destination_is_a_400_naming_the_reason(
        self, service: RunningService, sim: SimulatorServer, url: str, reason: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.callback(install_event(company_id)).status_code == 202
        path = f"/admin/v1/installations/{company_id}"
        answer = service.admin.patch(path, json={"destination_url": url})
        assert answer.status_code == 400, answer.text
        assert reason in answer.json()["error"]["message"]
