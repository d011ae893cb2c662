"""Object storage destination (s3://) against moto's S3 server over loopback: one object per
batch, a manifest per run, atomic objects, quarantine, purge, redaction and the policy."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from app.destinations import InvalidDestinationURL, redact_destination_url
from app.destinations.policy import DestinationPolicy
from app.destinations.urls import validate_destination_url
from app.destinations.warehouse.objectstore import ObjectStoreDestination
from app.destinations.warehouse.targets import parse_objectstore_url
from tests.destinations.factories import ANYWHERE, make_batch, make_destination, make_record
from tests.destinations.moto_s3 import SECRET_KEY, S3Server, moto_endpoint, s3

__all__ = ["moto_endpoint", "s3"]

COMPANY = 4242
RUN = "run-1"


def lines(body: bytes) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in body.splitlines()]


class TestObjects:
    async def test_one_object_per_batch_then_a_manifest(self, s3: S3Server) -> None:
        async with make_destination(s3.url()) as destination:
            first = await destination.write("rfis", COMPANY, make_batch(3), run_id=RUN)
            await destination.write("rfis", COMPANY, make_batch(2, start=10), run_id=RUN)
            marked = await destination.mark_deleted(
                "rfis", COMPANY, [1, 1, 2], datetime(2024, 6, 1, tzinfo=UTC), run_id=RUN
            )
            await destination.finish_run(RUN, succeeded=True)
        assert first.written == 3 and marked == 2
        base = f"procore/{COMPANY}"
        assert s3.list_keys() == [
            f"{base}/_runs/{RUN}.json",
            f"{base}/rfis/{RUN}-000001.jsonl",
            f"{base}/rfis/{RUN}-000002.jsonl",
            f"{base}/rfis/{RUN}-000003.jsonl",
        ]
        written = lines(s3.read(f"{base}/rfis/{RUN}-000001.jsonl"))
        assert [line["id"] for line in written] == [1, 2, 3]
        assert written[0]["company_id"] == COMPANY and written[0]["data"]["title"] == "original"
        tombstones = lines(s3.read(f"{base}/rfis/{RUN}-000003.jsonl"))
        assert [(t["id"], t["data"], t["deleted_at"]) for t in tombstones] == [
            (1, None, "2024-06-01T00:00:00Z"),
            (2, None, "2024-06-01T00:00:00Z"),
        ]
        manifest = json.loads(s3.read(f"{base}/_runs/{RUN}.json"))
        assert manifest["status"] == "succeeded" and manifest["format"] == "jsonl"
        assert manifest["streams"] == {"rfis": {"records": 5, "deleted": 2, "files": 3}}
        for item in manifest["files"]:
            body = s3.read(f"{base}/{item['path']}")
            assert item["sha256"] == hashlib.sha256(body).hexdigest()
            assert item["bytes"] == len(body)

    async def test_a_resumed_run_continues_after_the_earlier_attempts_objects(
        self, s3: S3Server
    ) -> None:
        async with make_destination(s3.url()) as destination:
            await destination.write("rfis", COMPANY, make_batch(2), run_id=RUN)
        # The process died before finish_run; the next attempt lists what is there.
        async with make_destination(s3.url()) as destination:
            await destination.write("rfis", COMPANY, make_batch(1, start=5), run_id=RUN)
            await destination.finish_run(RUN, succeeded=True)
        manifest = json.loads(s3.read(f"procore/{COMPANY}/_runs/{RUN}.json"))
        assert [f["path"] for f in manifest["files"]] == [
            f"rfis/{RUN}-000001.jsonl",
            f"rfis/{RUN}-000002.jsonl",
        ]
        assert manifest["streams"]["rfis"]["records"] == 3

    async def test_parquet_objects(self, s3: S3Server) -> None:
        async with make_destination(s3.url(format="parquet")) as destination:
            await destination.write("rfis", COMPANY, make_batch(4), run_id=RUN)
            await destination.finish_run(RUN, succeeded=True)
        [key] = [k for k in s3.list_keys() if k.endswith(".parquet")]
        table = pq.read_table(io.BytesIO(s3.read(key)))
        assert table.column("id").to_pylist() == [1, 2, 3, 4]
        assert json.loads(table.column("data")[0].as_py())["title"] == "original"

    async def test_a_large_object_goes_as_one_multipart_upload(self, s3: S3Server) -> None:
        target = parse_objectstore_url(s3.url())
        destination = ObjectStoreDestination(
            target, policy=ANYWHERE, multipart_threshold=5 * 2**20, part_size=5 * 2**20
        )
        batch = make_batch(9000, body="x" * 1000)
        async with destination:
            await destination.write("rfis", COMPANY, batch, run_id=RUN)
        [key] = s3.list_keys()
        assert len(lines(s3.read(key))) == 9000
        assert len(s3.read(key)) > 5 * 2**20  # more than one part
        uploads = s3.client().list_multipart_uploads(Bucket=s3.bucket)
        assert not uploads.get("Uploads")  # nothing left half-done


class TestQuarantineAndPurge:
    async def test_poison_records_go_to_the_quarantine_folder(self, s3: S3Server) -> None:
        batch = [make_record(1), make_record(2, amount=float("nan"))]
        async with make_destination(s3.url()) as destination:
            result = await destination.write("rfis", COMPANY, batch, run_id=RUN)
        assert result.written == 1 and [q.id for q in result.quarantined] == [2]
        [held] = s3.list_keys(f"procore/{COMPANY}/_quarantine/rfis/")
        [line] = lines(s3.read(held))
        assert line["id"] == 2 and "NaN" in str(line["reason"]) and '"NaN"' in str(line["record"])

    async def test_purge_removes_only_that_companys_objects(self, s3: S3Server) -> None:
        async with make_destination(s3.url()) as destination:
            await destination.write("rfis", COMPANY, make_batch(3), run_id=RUN)
            await destination.write("users", COMPANY, make_batch(1), run_id=RUN)
            await destination.write("rfis", COMPANY, [make_record(9, x=float("inf"))], run_id=RUN)
            await destination.write("rfis", 7, make_batch(2), run_id=RUN)
            await destination.finish_run(RUN, succeeded=True)
        async with make_destination(s3.url(prefix="other")) as destination:
            await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)
        async with make_destination(s3.url()) as destination:
            removed = await destination.purge(COMPANY, ["rfis", "users"])
            again = await destination.purge(COMPANY, ["rfis", "users"])
        assert removed == {"rfis": 3, "users": 1} and again == {}
        assert not s3.list_keys(f"procore/{COMPANY}/")
        assert s3.list_keys("procore/7/") and s3.list_keys(f"other/{COMPANY}/")


class TestURL:
    def test_credentials_are_redacted_and_the_url_normalised(self, s3: S3Server) -> None:
        url = s3.url()
        normalised = validate_destination_url(url.replace("s3://", "S3://"))
        assert normalised.startswith("s3://")
        shown = redact_destination_url(url)
        assert "never-shown" not in shown and SECRET_KEY not in shown
        destination = make_destination(url)
        assert "never-shown" not in destination.describe()

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("s3://", "bucket name"),
            ("s3://b/x?format=csv", "unsupported file format"),
            ("s3://bucket/a/../b", "plain folder names"),
            ("s3://bucket/p?endpoint_url=http://s3.example.com", "loopback"),
            ("s3://bucket/p?color=red", "unsupported query parameter 'color'"),
        ],
    )
    def test_bad_urls_are_refused_with_the_reason(self, url: str, message: str) -> None:
        with pytest.raises(InvalidDestinationURL, match=message):
            validate_destination_url(url)

    def test_a_loopback_endpoint_needs_its_network_allowed(self, s3: S3Server) -> None:
        with pytest.raises(InvalidDestinationURL, match="loopback"):
            validate_destination_url(s3.url(), DestinationPolicy.of(None))
