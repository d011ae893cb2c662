"""Testing a destination without syncing: what is checked, what failed and why, nothing left."""

from __future__ import annotations

import ipaddress
import sqlite3
from pathlib import Path

import pytest

from app.destinations import InvalidDestinationURL
from app.destinations.policy import DestinationPolicy
from app.destinations.probe import ProbeResult, probe_destination
from app.destinations.signing import generate_signing_secret
from tests.destinations.receiver import Receiver

ANY = DestinationPolicy.unrestricted()


def statuses(result: ProbeResult) -> dict[str, str]:
    return {check.name: check.status for check in result.checks}


def tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]


class TestSQL:
    async def test_a_reachable_writable_database_leaves_no_table(self, sql_url: str) -> None:
        if sql_url.startswith("sqlite"):
            path = Path(sql_url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True)
            sqlite3.connect(path).close()
        result = await probe_destination(sql_url, policy=ANY)
        assert result.ok, result
        assert statuses(result) == {"reachable": "ok", "writable": "ok"}
        assert result.error is None and result.kind == "sql"
        if sql_url.startswith("sqlite"):
            assert tables(path) == []

    async def test_a_missing_sqlite_file_is_not_created(self, tmp_path: Path) -> None:
        result = await probe_destination(f"sqlite:///{tmp_path}/new/dir/warehouse.db", policy=ANY)
        assert result.ok and "created at the first sync" in result.checks[1].detail
        assert not (tmp_path / "new").exists()

    async def test_a_sqlite_file_under_a_file_fails_as_unreachable(self, tmp_path: Path) -> None:
        (tmp_path / "blocker").write_text("")
        result = await probe_destination(f"sqlite:///{tmp_path}/blocker/warehouse.db", policy=ANY)
        assert not result.ok
        assert statuses(result) == {"reachable": "failed", "writable": "skipped"}
        assert result.error is not None and result.error.startswith("reachable: ")
        assert "is a file" in result.error

    async def test_a_file_that_is_not_a_database_is_not_writable(self, tmp_path: Path) -> None:
        path = tmp_path / "notes.db"
        path.write_bytes(b"these are my notes, not a database\n" * 200)
        result = await probe_destination(f"sqlite:///{path}", policy=ANY)
        assert statuses(result) == {"reachable": "ok", "writable": "failed"}, result
        assert "not a database" in (result.error or "")
        assert path.read_bytes().startswith(b"these are my notes")

    async def test_an_unreachable_server_says_so(self) -> None:
        result = await probe_destination("postgresql://etl:pw@127.0.0.1:1/warehouse", policy=ANY)
        assert statuses(result) == {"reachable": "failed", "writable": "skipped"}
        assert "cannot connect" in (result.error or "")
        assert "pw" not in result.model_dump_json()
        assert result.destination == "postgresql://etl:***@127.0.0.1:1/warehouse"


class TestFiles:
    async def test_a_folder_gets_a_scratch_file_removed_at_once(self, tmp_path: Path) -> None:
        result = await probe_destination(f"file://{tmp_path}", policy=ANY)
        assert result.ok and statuses(result) == {"reachable": "ok", "writable": "ok"}
        assert list(tmp_path.iterdir()) == []

    async def test_a_file_in_place_of_the_folder_fails(self, tmp_path: Path) -> None:
        (tmp_path / "out").write_text("")
        result = await probe_destination(f"file://{tmp_path}/out", policy=ANY)
        assert not result.ok and "is a file" in (result.error or "")


class TestHTTP:
    async def test_the_right_secret_is_accepted_and_a_wrong_one_refused(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        result = await probe_destination(receiver.url, policy=ANY, signing_secret=signing_secret)
        assert result.ok, result
        assert statuses(result) == {
            "reachable": "ok",
            "rejects_bad_signatures": "ok",
            "signature_accepted": "ok",
            "writable": "ok",
        }
        payloads = [d.payload for d in receiver.deliveries]
        assert [p["type"] for p in payloads] == ["connector.test", "connector.test"]
        assert all(p["records"] == [] for p in payloads)

    async def test_a_receiver_with_another_secret_refuses_the_signature(
        self, receiver: Receiver
    ) -> None:
        result = await probe_destination(
            receiver.url, policy=ANY, signing_secret=generate_signing_secret()
        )
        assert not result.ok
        assert statuses(result)["signature_accepted"] == "failed"
        assert (result.error or "").startswith("signature_accepted: the receiver refused")
        assert "HTTP 401" in (result.error or "")

    async def test_a_receiver_that_refuses_the_batch_says_why(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        receiver.answer_next(400, "x" * 10)  # the wrong-signature message gets 401 regardless
        receiver.answer_next(422, "unknown event type " + "y" * 5000)
        result = await probe_destination(receiver.url, policy=ANY, signing_secret=signing_secret)
        assert statuses(result)["writable"] == "failed"
        assert "HTTP 422: unknown event type" in (result.error or "")
        assert len(result.error or "") < 400  # an excerpt, never the whole body

    async def test_without_a_secret_only_reachability_is_checked(self, receiver: Receiver) -> None:
        result = await probe_destination(receiver.url, policy=ANY)
        assert result.ok
        assert statuses(result)["signature_accepted"] == "skipped"

    async def test_nothing_listening(self) -> None:
        result = await probe_destination(
            "http://127.0.0.1:1/hook", policy=ANY, signing_secret=generate_signing_secret()
        )
        assert statuses(result)["reachable"] == "failed" and not result.ok


class TestPolicy:
    async def test_not_a_destination_url_is_refused(self) -> None:
        with pytest.raises(InvalidDestinationURL):
            await probe_destination("gopher://example.com/x", policy=ANY)

    async def test_what_the_policy_refuses_as_written_is_refused(self, tmp_path: Path) -> None:
        policy = DestinationPolicy.of(tmp_path / "root")
        for url in (
            "http://127.0.0.1:9/hook",
            "postgresql://etl@10.0.0.5/db",
            f"sqlite:///{tmp_path}/elsewhere.db",
            f"file://{tmp_path}/out",
        ):
            with pytest.raises(InvalidDestinationURL):
                await probe_destination(url, policy=policy)

    async def test_an_allowed_network_is_reached(
        self, receiver: Receiver, signing_secret: str, tmp_path: Path
    ) -> None:
        policy = DestinationPolicy.of(tmp_path, [ipaddress.ip_network("127.0.0.0/8")])
        result = await probe_destination(receiver.url, policy=policy, signing_secret=signing_secret)
        assert result.ok, result
