"""Parsing, validation and redaction of destination URLs (SPEC section 6)."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from app.destinations.base import InvalidDestinationURL
from app.destinations.policy import DestinationPolicy, parse_ip
from app.destinations.warehouse.targets import (
    ObjectStoreTarget,
    WarehouseTarget,
    check_objectstore_policy,
    check_warehouse_policy,
    parse_objectstore_url,
    parse_warehouse_url,
)

SUPPORTED = "use sqlite:///, postgresql://, file:///, https://, s3:// or dlt+<warehouse>://"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_URL_LENGTH = 4096
MAX_PREFIX_LENGTH = 30

_SQLITE_DRIVERS = {"": "aiosqlite", "pysqlite": "aiosqlite", "aiosqlite": "aiosqlite"}
# Only psycopg 3 ships with the connector; URLs written for other drivers use the same syntax.
_POSTGRES_DRIVERS = {
    "": "psycopg",
    "psycopg": "psycopg",
    "psycopg_async": "psycopg",
    "psycopg2": "psycopg",
    "asyncpg": "psycopg",
}
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*\.?")
# libpq options a destination URL may carry. Others are refused: `host`/`hostaddr` would send
# the connection elsewhere than the checked host, and `service`, `passfile`, `sslcert`,
# `sslkey`, `sslrootcert` (other than `system`) or `options` read the service's files or
# change the server's settings.
_LIBPQ_OPTIONS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslnegotiation",
        "channel_binding",
        "require_auth",
        "gssencmode",
        "connect_timeout",
        "application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "user",
        "password",
    }
)
_SECRET_KEY = re.compile(
    r"pass|pwd|secret|token|key|sig|auth|credential|code|session", re.IGNORECASE
)
REDACTED = "***"


@dataclass(frozen=True, slots=True)
class SQLTarget:
    """A SQL destination: async SQLAlchemy URL plus the connector's own options."""

    url: URL
    dialect: Literal["sqlite", "postgresql"]
    table_prefix: str
    schema: str | None
    normalised: str
    typed_views: bool = False  # ?typed_views=true: a typed view per stream (sql_views.py)

    @property
    def sqlite_path(self) -> Path:
        """The SQLite database file (only for dialect 'sqlite')."""
        assert self.url.database is not None
        return Path(self.url.database)


@dataclass(frozen=True, slots=True)
class FileTarget:
    """A directory receiving newline-delimited JSON (or Parquet) files."""

    directory: Path
    format: Literal["jsonl", "parquet"]
    normalised: str


@dataclass(frozen=True, slots=True)
class HTTPTarget:
    """An HTTP endpoint receiving signed batches."""

    url: str
    normalised: str
    host: str = ""
    port: int = 443


Target = SQLTarget | FileTarget | HTTPTarget | WarehouseTarget | ObjectStoreTarget


def _fail(message: str) -> InvalidDestinationURL:
    return InvalidDestinationURL(f"destination_url: {message}")


def _check_identifier(name: str, value: str) -> str:
    if not _IDENTIFIER.fullmatch(value) or len(value) > MAX_PREFIX_LENGTH:
        raise _fail(
            f"{name} must be lower-case letters, digits and underscores "
            f"(at most {MAX_PREFIX_LENGTH} characters), got {value!r}"
        )
    return value


def check_table_prefix(prefix: str) -> str:
    """Returns the table prefix if it is a safe identifier ('' allowed); raises otherwise."""
    if not prefix:
        return ""
    if not _IDENTIFIER.fullmatch(prefix) or len(prefix) > MAX_PREFIX_LENGTH:
        raise ValueError(
            f"table_prefix must be lower-case letters, digits and underscores "
            f"(at most {MAX_PREFIX_LENGTH} characters), got {prefix!r}"
        )
    return prefix


def _parse_sql(text: str, scheme: str) -> SQLTarget:
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as error:
        # SQLAlchemy's message repeats the URL, password included; never pass it on.
        raise _fail(f"not a valid {scheme} URL") from error
    backend, _, driver = url.drivername.partition("+")
    backend = "postgresql" if backend == "postgres" else backend
    query = dict(url.query)
    if any(not isinstance(value, str) for value in query.values()):
        raise _fail("query parameters must not be repeated")
    prefix_value = str(query.pop("table_prefix", ""))
    table_prefix = _check_identifier("table_prefix", prefix_value) if prefix_value else ""
    schema_value = query.pop("schema", None)
    schema = _check_identifier("schema", str(schema_value)) if schema_value is not None else None
    views_value = str(query.pop("typed_views", "false")).lower()
    if views_value not in ("true", "false", "1", "0"):
        raise _fail(f"typed_views must be true or false, got {views_value!r}")
    typed_views = views_value in ("true", "1")
    if backend == "sqlite":
        if driver not in _SQLITE_DRIVERS:
            raise _fail(f"unsupported SQLite driver {driver!r}; use sqlite:///path.db")
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise _fail("sqlite needs a file path, e.g. sqlite:///data/warehouse.db")
        if "\x00" in url.database:
            raise _fail("the sqlite path must not contain NUL characters")
        if schema is not None:
            raise _fail("schema is only supported on PostgreSQL; use table_prefix on SQLite")
        if query:
            raise _fail(
                f"unsupported query parameter {sorted(query)[0]!r} for sqlite "
                "(supported: table_prefix, typed_views)"
            )
        async_url = url.set(drivername="sqlite+aiosqlite", query={})
        dialect: Literal["sqlite", "postgresql"] = "sqlite"
        canonical = "sqlite"
    elif backend == "postgresql":
        if driver not in _POSTGRES_DRIVERS:
            raise _fail(f"unsupported PostgreSQL driver {driver!r}; use postgresql://")
        _check_postgres(url.host, query)
        async_url = url.set(drivername="postgresql+psycopg", query=query)
        dialect = "postgresql"
        canonical = "postgresql" if not driver else f"postgresql+{driver}"
    else:  # pragma: no cover - the caller dispatches on the scheme
        raise _fail(f"unsupported scheme {scheme!r}; {SUPPORTED}")
    normalised = url.set(drivername=canonical).render_as_string(hide_password=False)
    return SQLTarget(async_url, dialect, table_prefix, schema, normalised, typed_views)


def _check_postgres(host: str | None, query: dict[str, Any]) -> None:
    if not host:
        raise _fail("postgresql URLs need a host, e.g. postgresql://user@db.example.com/warehouse")
    if not (_HOST_NAME.fullmatch(host) or parse_ip(host) is not None):
        raise _fail("the PostgreSQL host must be one host name or IP address")
    for name in sorted(query):
        if name not in _LIBPQ_OPTIONS:
            raise _fail(
                f"unsupported query parameter {name!r} for postgresql (supported: schema, "
                f"table_prefix, typed_views, {', '.join(sorted(_LIBPQ_OPTIONS))})"
            )
    if query.get("sslrootcert", "system") != "system":
        raise _fail("sslrootcert may only be 'system' (the system's CA certificates)")


def _parse_file(text: str) -> FileTarget:
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise _fail(
            "file URLs need an absolute path with three slashes, e.g. file:///var/lib/connector"
        )
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise _fail("file URLs need an absolute path, e.g. file:///var/lib/connector")
    if "\x00" in path:
        raise _fail("file paths must not contain NUL characters")
    if not path.strip("/"):
        raise _fail("file:/// is the file system's root; name a folder, e.g. file:///srv/out")
    if parts.fragment:
        raise _fail("file URLs must not contain a fragment")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    file_format = query.pop("format", "jsonl").lower()
    if file_format in ("ndjson", "json", "jsonlines"):
        file_format = "jsonl"
    if file_format not in ("jsonl", "parquet"):
        raise _fail(f"unsupported file format {file_format!r}; use format=jsonl or format=parquet")
    if query:
        raise _fail(
            f"unsupported query parameter {sorted(query)[0]!r} for file (supported: format)"
        )
    if file_format == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise _fail(
            "format=parquet needs pyarrow, which is not installed; install the 'parquet' extra "
            "(pip install 'procore-dmsa-connector[parquet]')"
        )
    directory = Path(path.rstrip("/") or "/")
    normalised = "file://" + parts.path.rstrip("/")
    if file_format == "parquet":
        normalised += "?format=parquet"
    return FileTarget(directory, "parquet" if file_format == "parquet" else "jsonl", normalised)


def _parse_http(text: str, scheme: str) -> HTTPTarget:
    parts = urlsplit(text)
    try:
        host = parts.hostname
        port = parts.port
    except ValueError as error:
        raise _fail("the port is not a number between 0 and 65535") from error
    if not host:
        raise _fail(f"{scheme} URLs need a host, e.g. https://receiver.example.com/procore")
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise _fail(
            f"http:// is only allowed for loopback hosts (127.0.0.1, localhost, ::1), "
            f"not {host!r}; use https://"
        )
    if parts.fragment:
        raise _fail(f"{scheme} URLs must not contain a fragment")
    netloc = parts.netloc.rpartition("@")
    host_text = f"[{host}]" if ":" in host else host
    host_port = host_text if port is None else f"{host_text}:{port}"
    netloc_text = f"{netloc[0]}@{host_port}" if netloc[1] else host_port
    normalised = urlunsplit((scheme, netloc_text, parts.path or "/", parts.query, ""))
    default_port = 443 if scheme == "https" else 80
    return HTTPTarget(normalised, normalised, host, default_port if port is None else port)


def parse_destination_url(url: str) -> Target:
    """Returns the parsed destination, or raises InvalidDestinationURL saying what is wrong."""
    if not isinstance(url, str):
        raise _fail(f"must be a string, got {type(url).__name__}")
    text = url.strip()
    if not text:
        raise _fail(f"must not be empty; {SUPPORTED}")
    if len(text) > MAX_URL_LENGTH:
        raise _fail(f"longer than {MAX_URL_LENGTH} characters")
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in text):
        raise _fail("must not contain spaces or control characters")
    scheme_text, sep, _ = text.partition(":")
    if not sep or not _SCHEME.fullmatch(scheme_text):
        raise _fail(f"not a URL (no scheme); {SUPPORTED}")
    scheme = scheme_text.lower()
    text = scheme + text[len(scheme_text) :]
    backend = scheme.partition("+")[0]
    if backend == "dlt":
        return parse_warehouse_url(text)
    if scheme == "s3":
        return parse_objectstore_url(text)
    if backend in ("sqlite", "postgresql", "postgres"):
        return _parse_sql(text, backend)
    if scheme == "file":
        return _parse_file(text)
    if scheme in ("https", "http"):
        return _parse_http(text, scheme)
    raise _fail(f"unsupported scheme {scheme!r}; {SUPPORTED}")


def check_policy(target: Target, policy: DestinationPolicy) -> None:
    """Raises InvalidDestinationURL when the URL as written breaks the policy (no DNS lookup)."""
    if isinstance(target, SQLTarget):
        if target.dialect == "sqlite":
            policy.confine(target.sqlite_path, "sqlite file")
        elif target.url.host:
            policy.check_host_text(target.url.host)
    elif isinstance(target, FileTarget):
        policy.confine(target.directory, "directory")
    elif isinstance(target, WarehouseTarget):
        check_warehouse_policy(target, policy)
    elif isinstance(target, ObjectStoreTarget):
        check_objectstore_policy(target, policy)
    else:
        policy.check_host_text(target.host)


def validate_destination_url(url: str, policy: DestinationPolicy | None = None) -> str:
    """Returns the normalised destination URL or raises InvalidDestinationURL.

    With a policy, the host as written and the path must also be allowed by it.
    """
    target = parse_destination_url(url)
    if policy is not None:
        check_policy(target, policy)
    return target.normalised


def _redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(
        [(key, REDACTED if _SECRET_KEY.search(key) else value) for key, value in pairs],
        safe="*",
    )


def redact_destination_url(url: str) -> str:
    """Returns the URL with its password, HTTP userinfo and secret query values as '***'."""
    # Edited as text rather than split and rejoined, which would change 'sqlite:////abs'.
    text = str(url).strip()
    scheme, has_authority, rest = text.partition("://")
    if not has_authority:
        scheme, rest = "", text
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, remainder = rest[:authority_end], rest[authority_end:]
    if has_authority and "@" in authority:
        userinfo, _, host_port = authority.rpartition("@")
        if scheme.lower() in ("http", "https"):
            # A user name alone is often a token on HTTP receivers.
            userinfo = REDACTED
        else:
            user, has_password, _ = userinfo.partition(":")
            userinfo = f"{user}:{REDACTED}" if has_password else user
        authority = f"{userinfo}@{host_port}"
    remainder, has_fragment, fragment = remainder.partition("#")
    path, has_query, query = remainder.partition("?")
    if has_query:
        path = f"{path}?{_redact_query(query)}"
    if has_fragment:
        path = f"{path}#{REDACTED if fragment else ''}"
    prefix = f"{scheme}://" if has_authority else ""
    return f"{prefix}{authority}{path}"
