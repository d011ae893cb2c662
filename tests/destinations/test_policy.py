"""The egress policy: which hosts, libpq options and paths a destination may use, checked on
the URL and again on the resolved address or real path when it connects."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

from app.config import SettingsError, load_settings
from app.destinations import (
    DestinationError,
    DestinationPolicy,
    InvalidDestinationURL,
    validate_destination_url,
)
from app.destinations.policy import policy_from_settings
from tests.destinations.conftest import POSTGRES_URL_VARIABLE
from tests.destinations.factories import make_destination, make_record
from tests.destinations.receiver import Receiver

STRICT = DestinationPolicy.of(Path("/srv/connector"))
LOOPBACK = DestinationPolicy.of(
    Path("/srv/connector"), [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
)


def loopback_hostname() -> str:
    """A host name (not an IP literal, not an internal name) that resolves to loopback here."""
    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)}
    assert addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses), (
        f"this test needs the machine's host name {name!r} to resolve to loopback, got {addresses}"
    )
    return name


class TestHosts:
    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("http://127.0.0.1:8080/hook", "loopback"),
            ("http://[::1]:8080/hook", "loopback"),
            ("https://[::ffff:127.0.0.1]/hook", "loopback"),
            ("https://10.1.2.3/hook", "private"),
            ("https://192.168.0.10/hook", "private"),
            ("https://[fd12:3456::1]/hook", "private"),
            ("https://100.64.0.1/hook", "carrier-grade NAT"),
            ("https://169.254.169.254/latest/meta-data", "link-local"),
            ("https://[fd00:ec2::254]/", "private"),
            ("https://kubernetes.default.svc/hook", "internal name"),
            ("https://api.prod.svc.cluster.local/hook", "internal name"),
            ("https://metadata.google.internal/", "internal name"),
            ("http://localhost:8080/hook", "internal name"),
            ("postgresql://etl:pw@10.0.0.5/warehouse", "private"),
            ("postgresql://etl:pw@127.0.0.1:5432/warehouse", "loopback"),
            ("postgresql://etl:pw@db.ns.svc.cluster.local/warehouse", "internal name"),
        ],
    )
    def test_refuses_internal_targets_by_default(self, url: str, reason: str) -> None:
        with pytest.raises(InvalidDestinationURL, match=r"^destination_url: ") as caught:
            validate_destination_url(url, STRICT)
        assert reason in str(caught.value)
        assert "CONNECTOR_DESTINATION_ALLOWED_NETWORKS" in str(caught.value)
        assert "pw" not in str(caught.value)

    @pytest.mark.parametrize(
        "url",
        [
            "https://receiver.example.com/hook",
            "https://93.184.216.34/hook",
            "postgresql://etl@db.example.com/warehouse",
        ],
    )
    def test_accepts_public_targets(self, url: str) -> None:
        assert validate_destination_url(url, STRICT)

    def test_the_allow_list_lets_loopback_through(self) -> None:
        assert validate_destination_url("http://127.0.0.1:8080/hook", LOOPBACK)
        assert validate_destination_url("postgresql://u@127.0.0.1/db", LOOPBACK)
        with pytest.raises(InvalidDestinationURL, match="private"):
            validate_destination_url("https://10.0.0.1/hook", LOOPBACK)

    async def test_an_http_host_resolving_to_loopback_is_refused_when_sending(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        url = f"https://{loopback_hostname()}:{receiver.port}/hook"
        assert validate_destination_url(url, STRICT)  # the text alone looks public
        destination = make_destination(url, signing_secret=signing_secret, policy=STRICT)
        async with destination:
            with pytest.raises(DestinationError, match="resolves to 127") as caught:
                await destination.write("rfis", 1, [make_record(1)], run_id="run-1")
        assert "loopback" in str(caught.value)
        assert receiver.deliveries == []

    async def test_a_postgresql_host_resolving_to_loopback_is_refused_when_connecting(
        self,
    ) -> None:
        url = f"postgresql://postgres@{loopback_hostname()}:5432/postgres"
        destination = make_destination(url, policy=STRICT)
        with pytest.raises(DestinationError, match="resolves to 127"):
            await destination.open()
        await destination.close()

    @pytest.mark.postgres_only
    async def test_an_allowed_postgresql_host_connects_to_the_checked_address(self) -> None:
        base = os.environ[POSTGRES_URL_VARIABLE].replace("127.0.0.1", loopback_hostname())
        async with make_destination(base, policy=LOOPBACK) as destination:
            result = await destination.write("policy_check", 1, [make_record(1)], run_id="r")
            assert result.written == 1
            await destination.purge(1, ["policy_check"])


class TestLibpqOptions:
    @pytest.mark.parametrize(
        "query",
        [
            "host=/var/run/postgresql",
            "hostaddr=10.0.0.1",
            "port=6432",
            "sslrootcert=/etc/connector/ca.pem",
            "sslcert=/root/.postgresql/postgresql.crt",
            "sslkey=/root/.postgresql/postgresql.key",
            "passfile=/root/.pgpass",
            "service=internal",
            "options=-c%20statement_timeout%3D0",
        ],
    )
    def test_refuses_options_that_reach_files_or_other_hosts(self, query: str) -> None:
        name = query.partition("=")[0]
        with pytest.raises(InvalidDestinationURL, match=f"'{name}'|sslrootcert"):
            validate_destination_url(f"postgresql://u@db.example.com/wh?{query}")

    @pytest.mark.parametrize(
        "url",
        [
            "postgresql://u@/wh",
            "postgresql://u@db1,db2/wh",
            "postgresql://u@%2Fvar%2Frun%2Fpostgresql/wh",
        ],
    )
    def test_needs_exactly_one_network_host(self, url: str) -> None:
        with pytest.raises(InvalidDestinationURL, match="host"):
            validate_destination_url(url)

    def test_accepts_tls_options(self) -> None:
        url = "postgresql://u@db.example.com/wh?sslmode=verify-full&sslrootcert=system"
        assert validate_destination_url(url, STRICT) == url


class TestPaths:
    def test_sqlite_and_files_must_lie_under_the_root(self, tmp_path: Path) -> None:
        policy = DestinationPolicy.of(tmp_path / "root")
        assert validate_destination_url(f"sqlite:///{tmp_path}/root/a/x.db", policy)
        assert validate_destination_url(f"file://{tmp_path}/root/out", policy)
        for url in (
            f"sqlite:///{tmp_path}/elsewhere.db",
            f"sqlite:///{tmp_path}/root/../elsewhere.db",
            f"file://{tmp_path}/out",
            "file:///etc",
        ):
            with pytest.raises(InvalidDestinationURL, match="outside CONNECTOR_DESTINATION_ROOT"):
                validate_destination_url(url, policy)

    def test_never_the_services_own_database(self, tmp_path: Path) -> None:
        service_db = tmp_path / "connector.db"
        policy = DestinationPolicy.of(tmp_path, protected_paths=[service_db])
        for name in ("connector.db", "connector.db-wal"):
            with pytest.raises(InvalidDestinationURL, match="the service's own database"):
                validate_destination_url(f"sqlite:///{tmp_path}/{name}", policy)

    async def test_a_symlink_made_after_the_check_is_refused_when_opening(
        self, tmp_path: Path
    ) -> None:
        root, outside = tmp_path / "root", tmp_path / "outside"
        root.mkdir()
        outside.mkdir()
        policy = DestinationPolicy.of(root)
        sqlite = make_destination(f"sqlite:///{root}/link/x.db", policy=policy)
        files = make_destination(f"file://{root}/link", policy=policy)
        (root / "link").symlink_to(outside)
        for destination in (sqlite, files):
            with pytest.raises(DestinationError, match="outside CONNECTOR_DESTINATION_ROOT"):
                await destination.open()
            await destination.close()
        assert list(outside.iterdir()) == []


class TestSettings:
    def test_reads_the_allowed_networks_and_the_root(self, tmp_path: Path) -> None:
        settings = load_settings(
            _env_file=None,
            destination_allowed_networks="127.0.0.0/8, fd00::/8",
            destination_root=str(tmp_path),
            destination_url=f"sqlite:///{tmp_path}/out.db",
        )
        policy = policy_from_settings(settings)
        assert policy.root == tmp_path.resolve()
        assert [str(net) for net in policy.allowed_networks] == ["127.0.0.0/8", "fd00::/8"]

    def test_a_bad_network_stops_start_up_in_one_line(self) -> None:
        with pytest.raises(SettingsError, match=r"^CONNECTOR_DESTINATION_ALLOWED_NETWORKS: "):
            load_settings(_env_file=None, destination_allowed_networks="10.0.0.1/8")

    def test_a_default_destination_outside_the_root_stops_start_up(self, tmp_path: Path) -> None:
        with pytest.raises(SettingsError) as caught:
            load_settings(
                _env_file=None,
                destination_root=str(tmp_path / "root"),
                destination_url=f"sqlite:///{tmp_path}/out.db",
            )
        assert str(caught.value).startswith("CONNECTOR_DESTINATION_URL: ")
        assert "outside CONNECTOR_DESTINATION_ROOT" in str(caught.value)

    def test_the_default_destination_may_not_be_the_services_database(self, tmp_path: Path) -> None:
        with pytest.raises(SettingsError, match="the service's own database"):
            load_settings(
                _env_file=None,
                destination_root=str(tmp_path),
                database_url=f"sqlite:///{tmp_path}/connector.db",
                destination_url=f"sqlite:///{tmp_path}/connector.db",
            )
