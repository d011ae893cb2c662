"""An S3 emulator for tests: moto's server mode on a loopback port, one bucket per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

ACCESS_KEY = "AKIDTESTCONNECTOR"
SECRET_KEY = "s3cr3t/KEY+never-shown"


@dataclass(frozen=True)
class S3Server:
    """A running emulator and a fresh bucket on it."""

    endpoint: str
    bucket: str

    def client(self) -> Any:
        """A boto3 client to look at what the destination wrote."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def url(self, scheme: str = "s3", prefix: str = "procore", **query: str) -> str:
        """A destination URL for the bucket, credentials in the user-info."""
        from urllib.parse import quote, urlencode

        params = {"endpoint_url": self.endpoint, "region": "us-east-1", **query}
        user = f"{ACCESS_KEY}:{quote(SECRET_KEY, safe='')}"
        return f"{scheme}://{user}@{self.bucket}/{prefix}?{urlencode(params)}"

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every key in the bucket under the prefix, sorted."""
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        """The object's bytes."""
        body: bytes = self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 in server mode on 127.0.0.1 and a free port, for the module's tests."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(moto_endpoint: str) -> S3Server:
    """A fresh bucket on the emulator."""
    server = S3Server(moto_endpoint, f"test-{secrets.token_hex(6)}")
    server.client().create_bucket(Bucket=server.bucket)
    return server
