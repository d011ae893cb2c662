"""File destination: JSON-lines (and Parquet when pyarrow is installed) in a temporary directory."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.destinations import DestinationError, InvalidDestinationURL
from app.destinations import parquet as parquet_module
from app.destinations.files import write_atomically
from tests.destinations.factories import BASE_TIME, make_batch, make_destination, make_record

COMPANY = 4242
RUN = "run-1"


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Returns the JSON objects of a JSON-lines file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def visible_files(root: Path) -> list[str]:
    """Returns every file under root, relative, sorted."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


class TestFileDestination:
    async def test_writes_one_jsonl_file_per_batch(self, tmp_path: Path) -> None:
        root = tmp_path / "out"
        async with make_destination(f"file://{root}") as destination:
            await destination.write("rfis", COMPANY, make_batch(2), run_id=RUN)
            await destination.write("rfis", COMPANY, make_batch(1, start=3), run_id=RUN)
            await destination.write("users", COMPANY, [make_record(9, project_id=None)], run_id=RUN)

        assert visible_files(root) == [
            "4242/rfis/run-1-000001.jsonl",
            "4242/rfis/run-1-000002.jsonl",
            "4242/users/run-1-000001.jsonl",
        ]
        [first, second] = read_lines(root / "4242/rfis/run-1-000001.jsonl")
        assert set(first) == {
            "company_id",
            "id",
            "project_id",
            "updated_at",
            "deleted_at",
            "synced_at",
            "data",
        }
        assert (first["company_id"], first["id"], first["project_id"]) == (COMPANY, 1, 10)
        assert first["updated_at"] == "2024-05-01T12:00:00Z"
        assert first["deleted_at"] is None
        assert first["synced_at"].endswith("Z")
        assert first["data"] == make_record(1).data
        assert second["id"] == 2

    async def test_keeps_unicode_readable(self, tmp_path: Path) -> None:
        async with make_destination(f"file://{tmp_path}") as destination:
            await destination.write("rfis", COMPANY, [make_record(1)], run_id=RUN)

        text = (tmp_path / "4242/rfis/run-1-000001.jsonl").read_text(encoding="utf-8")
        assert "Zoë Ångström" in text

    async def test_mark_deleted_writes_tombstones(self, tmp_path: Path) -> None:
        deleted_at = BASE_TIME + timedelta(hours=2)
        async with make_destination(f"file://{tmp_path}") as destination:
            marked = await destination.mark_deleted(
                "rfis", COMPANY, [5, 4, 5], deleted_at, run_id=RUN
            )

        assert marked == 2
        lines = read_lines(tmp_path / "4242/rfis/run-1-000001.jsonl")
        assert [(line["id"], line["deleted_at"], line["data"]) for line in lines] == [
            (4, "2024-05-01T14:00:00Z", None),
            (5, "2024-05-01T14:00:00Z", None),
        ]

    async def test_finish_run_writes_the_manifest(self, tmp_path: Path) -> None:
        async with make_destination(f"file://{tmp_path}") as destination:
            await destination.write("rfis", COMPANY, make_batch(3), run_id=RUN)
            await destination.mark_deleted("rfis", COMPANY, [1], BASE_TIME, run_id=RUN)
            await destination.write("users", COMPANY, make_batch(2), run_id=RUN)
            await destination.write("users", 7, make_batch(1), run_id=RUN)
            await destination.finish_run(RUN, succeeded=True)

        manifest = json.loads((tmp_path / "4242/_runs/run-1.json").read_text())
        assert manifest["run_id"] == RUN
        assert manifest["company_id"] == COMPANY
        assert manifest["status"] == "succeeded"
        assert manifest["streams"] == {
            "rfis": {"records": 3, "deleted": 1, "files": 2},
            "users": {"records": 2, "deleted": 0, "files": 1},
        }
        paths = [file["path"] for file in manifest["files"]]
        assert paths == [
            "rfis/run-1-000001.jsonl",
            "rfis/run-1-000002.jsonl",
            "users/run-1-000001.jsonl",
        ]
        for file in manifest["files"]:
            assert (tmp_path / "4242" / file["path"]).stat().st_size == file["bytes"]
        other = json.loads((tmp_path / "7/_runs/run-1.json").read_text())
        assert other["streams"] == {"users": {"records": 1, "deleted": 0, "files": 1}}

    async def test_a_failed_run_says_so_in_its_manifest(self, tmp_path: Path) -> None:
        async with make_destination(f"file://{tmp_path}") as destination:
            await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)
            await destination.finish_run(RUN, succeeded=False)

        manifest = json.loads((tmp_path / "4242/_runs/run-1.json").read_text())
        assert manifest["status"] == "failed"

    async def test_a_resumed_run_adds_files_instead_of_overwriting(self, tmp_path: Path) -> None:
        async with make_destination(f"file://{tmp_path}") as first_process:
            await first_process.write("rfis", COMPANY, make_batch(2), run_id=RUN)
        # The process died; a new one resumes the same run.
        async with make_destination(f"file://{tmp_path}") as second_process:
            await second_process.write("rfis", COMPANY, make_batch(1, start=3), run_id=RUN)
            await second_process.finish_run(RUN, succeeded=True)

        assert [line["id"] for line in read_lines(tmp_path / "4242/rfis/run-1-000001.jsonl")] == [
            1,
            2,
        ]
        assert [line["id"] for line in read_lines(tmp_path / "4242/rfis/run-1-000002.jsonl")] == [3]
        manifest = json.loads((tmp_path / "4242/_runs/run-1.json").read_text())
        assert manifest["streams"]["rfis"] == {"records": 3, "deleted": 0, "files": 2}

    async def test_concurrent_batches_get_distinct_files(self, tmp_path: Path) -> None:
        async with make_destination(f"file://{tmp_path}") as destination:
            await asyncio.gather(
                *(
                    destination.write("rfis", COMPANY, make_batch(10, start=start), run_id=RUN)
                    for start in range(1, 200, 10)
                )
            )

        files = list((tmp_path / "4242/rfis").glob("*.jsonl"))
        assert len(files) == 20
        assert sum(len(read_lines(path)) for path in files) == 200

    async def test_creates_the_directory(self, tmp_path: Path) -> None:
        root = tmp_path / "deep" / "er"
        async with make_destination(f"file://{root}") as destination:
            assert destination.describe() == f"JSON-lines files in {root}"
        assert root.is_dir()

    async def test_refuses_unsafe_run_ids(self, tmp_path: Path) -> None:
        async with make_destination(f"file://{tmp_path}") as destination:
            with pytest.raises(ValueError, match="run_id"):
                await destination.write("rfis", COMPANY, make_batch(1), run_id="../escape")


class TestAtomicWrites:
    def test_a_failed_rename_leaves_no_file_behind(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def failing_replace(source: str, target: str) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", failing_replace)
        with pytest.raises(OSError, match="disk full"):
            write_atomically(tmp_path / "x" / "batch.jsonl", b"{}\n")

        assert visible_files(tmp_path) == []

    def test_the_final_name_appears_complete(self, tmp_path: Path) -> None:
        target = tmp_path / "batch.jsonl"
        write_atomically(target, b"one\n")
        write_atomically(target, b"two\n")
        assert target.read_bytes() == b"two\n"
        assert visible_files(tmp_path) == ["batch.jsonl"]


class TestParquet:
    async def test_writes_parquet_files(self, tmp_path: Path) -> None:
        import pyarrow.parquet as pq  # type: ignore[import-not-found,import-untyped,unused-ignore]

        async with make_destination(f"file://{tmp_path}?format=parquet") as destination:
            await destination.write("rfis", COMPANY, make_batch(3), run_id=RUN)
            await destination.mark_deleted("rfis", COMPANY, [2], BASE_TIME, run_id=RUN)
            await destination.finish_run(RUN, succeeded=True)

        table = pq.read_table(tmp_path / "4242/rfis/run-1-000001.parquet")
        rows = table.to_pylist()
        assert [row["id"] for row in rows] == [1, 2, 3]
        assert rows[0]["updated_at"].isoformat() == "2024-05-01T12:00:00+00:00"
        assert json.loads(rows[0]["data"]) == make_record(1).data
        manifest = json.loads((tmp_path / "4242/_runs/run-1.json").read_text())
        assert manifest["format"] == "parquet"
        assert manifest["streams"]["rfis"] == {"records": 3, "deleted": 1, "files": 2}


class TestParquetWithoutPyarrow:
    def test_the_url_is_refused_with_a_clear_message(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
        with pytest.raises(
            InvalidDestinationURL, match=r"pip install 'procore-dmsa-connector\[parquet\]'"
        ):
            make_destination("file:///tmp/out?format=parquet")

    def test_opening_fails_with_a_clear_message(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def missing(name: str) -> Any:
            raise ImportError(f"No module named {name!r}")

        monkeypatch.setattr(importlib, "import_module", missing)
        with pytest.raises(DestinationError, match="format=parquet needs pyarrow"):
            parquet_module.require_pyarrow()


class TestNaiveTimestamps:
    async def test_mark_deleted_refuses_a_naive_deleted_at(self, tmp_path: Path) -> None:
        async with make_destination(f"file://{tmp_path}") as destination:
            with pytest.raises(ValueError, match="timezone-aware"):
                await destination.mark_deleted(
                    "rfis", COMPANY, [1], BASE_TIME.replace(tzinfo=None), run_id=RUN
                )
