"""Warehouse and lake destination URLs (`dlt+<kind>://...`): parsing, extras and the policy.

| URL | loads into |
|---|---|
| `dlt+duckdb:///relative.duckdb`, `dlt+duckdb:////abs/path.duckdb` | a DuckDB file |
| `dlt+postgres://user:pw@host:5432/db` | PostgreSQL through dlt (typed tables) |
| `dlt+snowflake://user:pw@account/database?warehouse=W&role=R` | Snowflake |
| `dlt+bigquery://project?location=EU&credentials=<base64 service account JSON>` | BigQuery |
| `dlt+filesystem+s3://key:secret@bucket/prefix?endpoint_url=...&region=...` | Parquet in S3 |
| `dlt+filesystem+file:///abs/folder` | Parquet files in a local folder |

Every kind takes `dataset` (the schema or folder, default `procore`) and `table_prefix`.
The URL's credentials are passed to dlt explicitly; dlt never reads them from files.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit

from app.destinations.base import InvalidDestinationURL
from app.destinations.policy import DestinationPolicy, parse_ip

WarehouseKind = Literal["duckdb", "postgres", "snowflake", "bigquery", "filesystem"]
SCHEMES = (
    "dlt+duckdb",
    "dlt+postgres",
    "dlt+postgresql",
    "dlt+snowflake",
    "dlt+bigquery",
    "dlt+filesystem+s3",
    "dlt+filesystem+file",
)
DEFAULT_DATASET = "procore"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,29}")
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*\.?")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
_SNOWFLAKE_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_POSTGRES_OPTIONS = frozenset({"sslmode", "sslrootcert", "connect_timeout", "application_name"})
_SNOWFLAKE_OPTIONS = frozenset({"warehouse", "role", "authenticator"})
# What each kind needs installed: (module, extra that brings it).
_NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "duckdb": (("dlt", "warehouse"), ("duckdb", "warehouse"), ("pyarrow", "warehouse")),
    "postgres": (("dlt", "warehouse"), ("psycopg2", "warehouse"), ("pyarrow", "warehouse")),
    "filesystem": (("dlt", "warehouse"), ("s3fs", "warehouse"), ("pyarrow", "warehouse")),
    "snowflake": (("dlt", "snowflake"), ("snowflake.connector", "snowflake")),
    "bigquery": (("dlt", "bigquery"), ("google.cloud.bigquery", "bigquery")),
}


@dataclass(frozen=True, slots=True)
class WarehouseTarget:
    """A parsed `dlt+...` URL: which dlt destination, where, and with which credentials."""

    kind: WarehouseKind
    dataset: str
    table_prefix: str
    normalised: str
    path: Path | None = None  # duckdb file or local folder, confined under the root
    host: str | None = None  # the network host the policy checks
    port: int = 443
    credentials: Any = None  # what dlt's destination factory takes (holds secrets)
    bucket_url: str | None = None
    options: dict[str, str] = field(default_factory=dict)


def _fail(message: str) -> InvalidDestinationURL:
    return InvalidDestinationURL(f"destination_url: {message}")


def installed(module: str) -> bool:
    """True when the module can be imported (a module blocked in sys.modules is not)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_extra(kind: str) -> str | None:
    """Returns the message naming the extra to install, or None when everything is there."""
    for module, extra in _NEEDS[kind]:
        if not installed(module):
            return (
                f"dlt+{kind} needs the '{extra}' extra ({module} is not installed): "
                f"pip install 'procore-dmsa-connector[{extra}]'"
            )
    return None


def _query(text: str, allowed: frozenset[str], scheme: str) -> dict[str, str]:
    pairs = parse_qsl(text, keep_blank_values=True)
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise _fail("query parameters must not be repeated")
    query = dict(pairs)
    for name in sorted(query):
        if name not in allowed | {"dataset", "table_prefix"}:
            supported = ", ".join(sorted(allowed | {"dataset", "table_prefix"}))
            raise _fail(
                f"unsupported query parameter {name!r} for {scheme} (supported: {supported})"
            )
    return query


def _identifier(name: str, value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise _fail(
            f"{name} must be lower-case letters, digits and underscores "
            f"(at most 30 characters), got {value!r}"
        )
    return value


def _host(host: str | None, scheme: str, example: str) -> str:
    if not host:
        raise _fail(f"{scheme} URLs need a host, e.g. {example}")
    if not (_HOST_NAME.fullmatch(host) or parse_ip(host) is not None):
        raise _fail(f"the {scheme} host must be one host name or IP address")
    return host


def _local_path(text: str, scheme: str, example: str) -> Path:
    rest = text.split("://", 1)[1].split("?", 1)[0]
    if "#" in rest:
        raise _fail(f"{scheme} URLs must not contain a fragment")
    path = unquote(rest)
    if not path.startswith("/") or not path.strip("/"):
        raise _fail(f"{scheme} needs a path, e.g. {example}")
    if "\x00" in path:
        raise _fail(f"the {scheme} path must not contain NUL characters")
    # Like sqlite:///: three slashes are a relative path, four an absolute one.
    return Path(path[1:])


def _common(query: dict[str, str]) -> tuple[str, str]:
    dataset = _identifier("dataset", query.pop("dataset", DEFAULT_DATASET))
    prefix = query.pop("table_prefix", "")
    return dataset, _identifier("table_prefix", prefix) if prefix else ""


def _normalised(scheme: str, text: str) -> str:
    return scheme + text[len(scheme) :]


def _parse_duckdb(text: str) -> WarehouseTarget:
    parts = urlsplit(text)
    query = _query(parts.query, frozenset(), "dlt+duckdb")
    dataset, prefix = _common(query)
    path = _local_path(text, "dlt+duckdb", "dlt+duckdb:///data/warehouse.duckdb")
    return WarehouseTarget("duckdb", dataset, prefix, text, path=path)


def _parse_postgres(text: str) -> WarehouseTarget:
    parts = urlsplit(text)
    query = _query(parts.query, _POSTGRES_OPTIONS, "dlt+postgres")
    dataset, prefix = _common(query)
    try:
        port = parts.port or 5432
    except ValueError as error:
        raise _fail("the port is not a number between 0 and 65535") from error
    host = _host(parts.hostname, "dlt+postgres", "dlt+postgres://etl@db.example.com/warehouse")
    if query.get("sslrootcert", "system") != "system":
        raise _fail("sslrootcert may only be 'system' (the system's CA certificates)")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise _fail("dlt+postgres needs a database name, e.g. dlt+postgres://etl@db/warehouse")
    netloc = parts.netloc
    credentials = f"postgresql://{netloc}/{parts.path.lstrip('/')}"
    if query:
        credentials += "?" + urlencode(sorted(query.items()))
    return WarehouseTarget(
        "postgres",
        dataset,
        prefix,
        text,
        host=host,
        port=port,
        credentials=credentials,
        options=query,
    )


def _parse_snowflake(text: str) -> WarehouseTarget:
    parts = urlsplit(text)
    query = _query(parts.query, _SNOWFLAKE_OPTIONS, "dlt+snowflake")
    dataset, prefix = _common(query)
    account = parts.hostname or ""
    if not _SNOWFLAKE_ACCOUNT.fullmatch(account):
        raise _fail("dlt+snowflake needs the account as host, e.g. dlt+snowflake://etl@ab12345/db")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise _fail("dlt+snowflake needs a database, e.g. dlt+snowflake://etl@ab12345/analytics")
    credentials = {
        "database": database,
        "username": unquote(parts.username or ""),
        "password": unquote(parts.password or "") or None,
        "host": account,
        **query,
    }
    host = account if "." in account else f"{account}.snowflakecomputing.com"
    return WarehouseTarget(
        "snowflake", dataset, prefix, text, host=host, credentials=credentials, options=query
    )


def _parse_bigquery(text: str) -> WarehouseTarget:
    parts = urlsplit(text)
    query = _query(parts.query, frozenset({"location", "credentials"}), "dlt+bigquery")
    dataset, prefix = _common(query)
    project = parts.hostname or ""
    if not _PROJECT.fullmatch(project) or parts.path.strip("/") or parts.username:
        raise _fail("dlt+bigquery needs a project id as host, e.g. dlt+bigquery://my-project")
    info: dict[str, Any] = {"project_id": project}
    encoded = query.pop("credentials", "")
    if encoded:
        try:
            account = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        except (binascii.Error, ValueError):
            raise _fail("credentials must be a base64-encoded service account JSON") from None
        if not isinstance(account, dict) or "private_key" not in account:
            raise _fail("credentials must be a base64-encoded service account JSON")
        info.update(account, project_id=project)
    return WarehouseTarget(
        "bigquery",
        dataset,
        prefix,
        text,
        host="bigquery.googleapis.com",
        credentials=info,
        options=query,
    )


def _parse_filesystem(text: str, scheme: str) -> WarehouseTarget:
    parts = urlsplit(text)
    if scheme == "dlt+filesystem+file":
        query = _query(parts.query, frozenset(), scheme)
        dataset, prefix = _common(query)
        if parts.netloc:
            raise _fail("dlt+filesystem+file needs an absolute path: dlt+filesystem+file:///srv")
        path = Path(unquote(parts.path))
        if not parts.path.startswith("/") or not parts.path.strip("/") or "\x00" in str(path):
            raise _fail("dlt+filesystem+file needs a folder, e.g. dlt+filesystem+file:///srv/lake")
        return WarehouseTarget(
            "filesystem", dataset, prefix, text, path=path, bucket_url=f"file://{path}"
        )
    query = _query(parts.query, frozenset({"endpoint_url", "region"}), scheme)
    dataset, prefix = _common(query)
    s3 = _parse_s3(parts, query, scheme)
    return WarehouseTarget(
        "filesystem",
        dataset,
        prefix,
        text,
        host=s3.host,
        port=s3.port,
        credentials=s3.credentials,
        bucket_url=f"s3://{s3.bucket}" + (f"/{s3.key_prefix}" if s3.key_prefix else ""),
        options=query,
    )


@dataclass(frozen=True, slots=True)
class S3Location:
    """A bucket, a key prefix, the endpoint and the credentials an S3 URL names."""

    bucket: str
    key_prefix: str
    host: str
    port: int
    credentials: dict[str, str | None]


def _parse_s3(parts: SplitResult, query: dict[str, str], scheme: str) -> S3Location:
    bucket = parts.hostname or ""
    if not _BUCKET.fullmatch(bucket):
        raise _fail(f"{scheme} needs a bucket name as host, e.g. {scheme}://my-bucket/procore")
    if parts.fragment:
        raise _fail(f"{scheme} URLs must not contain a fragment")
    endpoint = query.get("endpoint_url")
    region = query.get("region", "us-east-1")
    if not re.fullmatch(r"[a-z0-9-]{1,40}", region):
        raise _fail(f"region must look like us-east-1, got {region!r}")
    host, port = f"s3.{region}.amazonaws.com", 443
    if endpoint is not None:
        endpoint_parts = urlsplit(endpoint)
        if endpoint_parts.scheme not in ("https", "http") or not endpoint_parts.hostname:
            raise _fail("endpoint_url must be an http(s) URL, e.g. https://s3.example.com")
        host = endpoint_parts.hostname
        try:
            port = endpoint_parts.port or (443 if endpoint_parts.scheme == "https" else 80)
        except ValueError as error:
            raise _fail("the endpoint_url port is not a number") from error
        if endpoint_parts.scheme == "http" and host not in ("127.0.0.1", "localhost", "::1"):
            raise _fail("endpoint_url may use http:// only for loopback hosts; use https://")
    key_prefix = unquote(parts.path).strip("/")
    parts_of_prefix = key_prefix.split("/") if key_prefix else []
    if "\x00" in key_prefix or any(part in ("", ".", "..") for part in parts_of_prefix):
        raise _fail(f"the {scheme} key prefix must be plain folder names, got {key_prefix!r}")
    credentials = {
        "aws_access_key_id": unquote(parts.username) if parts.username else None,
        "aws_secret_access_key": unquote(parts.password) if parts.password else None,
        "region_name": region,
        "endpoint_url": endpoint,
    }
    return S3Location(bucket, key_prefix, host, port, credentials)


@dataclass(frozen=True, slots=True)
class ObjectStoreTarget:
    """A native `s3://bucket/prefix` destination: JSON-lines or Parquet objects per batch."""

    location: S3Location
    format: Literal["jsonl", "parquet"]
    normalised: str


def parse_objectstore_url(text: str) -> ObjectStoreTarget:
    """Returns the parsed `s3://` URL, or raises InvalidDestinationURL naming the problem."""
    text = _normalised("s3", text)
    parts = urlsplit(text)
    query = _query(parts.query, frozenset({"endpoint_url", "region", "format"}), "s3")
    for name in ("dataset", "table_prefix"):
        if name in query:
            raise _fail(
                f"unsupported query parameter {name!r} for s3 (supported: "
                "endpoint_url, format, region)"
            )
    file_format = query.pop("format", "jsonl").lower()
    if file_format in ("ndjson", "json", "jsonlines"):
        file_format = "jsonl"
    if file_format not in ("jsonl", "parquet"):
        raise _fail(f"unsupported file format {file_format!r}; use format=jsonl or format=parquet")
    location = _parse_s3(parts, query, "s3")
    for module in ("aiobotocore", *(("pyarrow",) if file_format == "parquet" else ())):
        if not installed(module):
            raise _fail(
                f"s3:// needs the 'warehouse' extra ({module} is not installed): "
                "pip install 'procore-dmsa-connector[warehouse]'"
            )
    return ObjectStoreTarget(location, "parquet" if file_format == "parquet" else "jsonl", text)


def parse_warehouse_url(text: str) -> WarehouseTarget:
    """Returns the parsed `dlt+...` URL, or raises InvalidDestinationURL naming the problem.

    A kind whose libraries are not installed is refused with the extra to install.
    """
    scheme = text.partition(":")[0].lower()
    text = _normalised(scheme, text)
    if scheme not in SCHEMES:
        raise _fail(f"unsupported warehouse scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if "://" not in text:
        raise _fail(f"{scheme} URLs look like {scheme}://...")
    if scheme == "dlt+duckdb":
        target = _parse_duckdb(text)
    elif scheme in ("dlt+postgres", "dlt+postgresql"):
        target = _parse_postgres(text)
    elif scheme == "dlt+snowflake":
        target = _parse_snowflake(text)
    elif scheme == "dlt+bigquery":
        target = _parse_bigquery(text)
    else:
        target = _parse_filesystem(text, scheme)
    problem = missing_extra(target.kind)
    if problem is not None:
        raise _fail(problem)
    return target


def check_warehouse_policy(target: WarehouseTarget, policy: DestinationPolicy) -> None:
    """Raises InvalidDestinationURL when the URL as written breaks the policy (no DNS lookup)."""
    if target.path is not None:
        policy.confine(target.path, "warehouse path")
    if target.host is not None:
        policy.check_host_text(target.host)


def check_objectstore_policy(target: ObjectStoreTarget, policy: DestinationPolicy) -> None:
    """Raises InvalidDestinationURL when the endpoint as written breaks the policy."""
    policy.check_host_text(target.location.host)
