"""The dlt side of a warehouse destination: one pipeline, loads of Arrow tables, SQL for the
rest. Everything here is blocking and runs in a worker thread, one call at a time.

One `pipeline.run` per load: extract, normalise and load into the warehouse, which returns
only when the load package is complete (its tables merged, `_dlt_loads` written). The
pipeline's working folder is a private temporary folder per destination: after a crash the
connector re-delivers from its checkpoints, so nothing stale is ever replayed from it.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.core.logging import scrub_text
from app.destinations.base import DestinationError
from app.destinations.records import DestinationRecord, unique_last
from app.destinations.screening import quarantine_text
from app.destinations.warehouse.shaping import ShapedTable, key_columns, shape_stream
from app.destinations.warehouse.targets import WarehouseTarget

PIPELINE_NAME = "procore_connector"
QUARANTINE_TABLE = "connector_quarantine"
CHUNK = 500
_NOT_NULL = frozenset({"company_id", "id", "synced_at", "_position"})


@dataclass(slots=True)
class Batch:
    """One write: the records to land and the ones quarantined, for one stream and company."""

    stream: str
    company_id: int
    run_id: str
    records: Sequence[DestinationRecord]
    quarantined: Sequence[tuple[DestinationRecord, str]]


def _arrow_types(pa: Any) -> dict[str, Any]:
    return {
        "bool": pa.bool_(),
        "bigint": pa.int64(),
        "double": pa.float64(),
        "text": pa.string(),
        "json": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
    }


def _chunks(items: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class WarehouseLoader:
    """Loads shaped tables through one dlt pipeline; blocking, not thread-safe."""

    def __init__(self, target: WarehouseTarget, *, prefix: str, address: str | None) -> None:
        self._target = target
        self._prefix = prefix
        self._address = address  # the checked address, for drivers that can pin it
        # dlt reports anonymous usage to its makers unless told not to; the connector never
        # sends anything anywhere but its destinations. Its own logging stays quiet too.
        # Both can be set otherwise in the environment.
        os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
        os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
        self._workdir = Path(tempfile.mkdtemp(prefix="connector-dlt-"))
        self._dlt: Any = importlib.import_module("dlt")
        self._pa: Any = importlib.import_module("pyarrow")
        self._arrow = _arrow_types(self._pa)
        self._native: Any = None
        self._pipelines: dict[int | None, Any] = {}
        self.sql = target.kind != "filesystem"

    def _factory(self, company_id: int | None) -> Any:
        destinations = self._dlt.destinations
        target = self._target
        if target.kind == "duckdb":
            duckdb: Any = importlib.import_module("duckdb")
            if self._native is None:
                assert target.path is not None
                self._native = duckdb.connect(str(target.path))
            return destinations.duckdb(credentials=self._native)
        if target.kind == "postgres":
            credentials = target.credentials
            if self._address is not None:
                # libpq connects to the checked address; the host name still verifies TLS.
                joiner = "&" if "?" in credentials else "?"
                credentials = f"{credentials}{joiner}hostaddr={self._address}"
            return destinations.postgres(credentials=credentials)
        if target.kind == "snowflake":
            return destinations.snowflake(credentials=dict(target.credentials))
        if target.kind == "bigquery":
            return destinations.bigquery(
                credentials=dict(target.credentials), location=target.options.get("location")
            )
        credentials = None
        if target.credentials is not None:
            specs: Any = importlib.import_module("dlt.common.configuration.specs")
            credentials = specs.AwsCredentials(
                **{k: v for k, v in target.credentials.items() if v is not None}
            )
        # One folder per company under each table, so that purge removes a company's files.
        return destinations.filesystem(
            bucket_url=target.bucket_url,
            credentials=credentials,
            layout="{table_name}/{company}/{load_id}.{file_id}.{ext}",
            extra_placeholders={"company": str(company_id)},
        )

    def pipeline(self, company_id: int) -> Any:
        """The pipeline loading this company's data (one for all, except on file systems)."""
        key = company_id if not self.sql else None
        pipeline = self._pipelines.get(key)
        if pipeline is None:
            name = PIPELINE_NAME if key is None else f"{PIPELINE_NAME}_{key}"
            pipeline = self._dlt.pipeline(
                pipeline_name=name,
                pipelines_dir=str(self._workdir),
                destination=self._factory(company_id),
                dataset_name=self._target.dataset,
                progress=None,
            )
            try:
                # The warehouse's stored schema, so that a type change is seen before loading.
                pipeline.sync_destination()
            except Exception as error:
                raise DestinationError(f"cannot reach the warehouse: {_reason(error)}") from None
            self._pipelines[key] = pipeline
        return pipeline

    def open(self) -> None:
        """Connects once, so that a wrong URL or password fails the run at its start."""
        pipeline = self.pipeline(0)
        if self.sql:
            with pipeline.sql_client() as client:
                client.execute_sql("SELECT 1")

    def table(self, stream: str) -> str:
        """The stream's table name."""
        return self._prefix + stream

    def _existing(self, pipeline: Any) -> Any:
        schema = pipeline.default_schema if pipeline.default_schema_name else None

        def types(table: str) -> dict[str, str]:
            if schema is None or table not in schema.tables:
                return {}
            columns = schema.tables[table].get("columns", {})
            return {name: column.get("data_type") for name, column in columns.items()}

        return types

    def _tables(self, pipeline: Any) -> dict[str, Any]:
        utils: Any = importlib.import_module("dlt.common.schema.utils")
        if not pipeline.default_schema_name:
            return {}
        tables = pipeline.default_schema.tables
        return {name: table for name, table in tables.items() if utils.has_table_seen_data(table)}

    def load(self, batches: Sequence[Batch]) -> list[str]:
        """Loads the batches (of one company) in one pipeline run; returns type-change notes."""
        company_id = batches[0].company_id
        pipeline = self.pipeline(company_id)
        synced_at = datetime.now(UTC)
        by_stream: dict[str, list[Batch]] = {}
        for batch in batches:
            by_stream.setdefault(batch.stream, []).append(batch)
        shaped: list[ShapedTable] = []
        notes: list[str] = []
        landed: dict[str, list[str]] = {}
        held: list[dict[str, Any]] = []
        for stream, group in by_stream.items():
            records = unique_last(record for batch in group for record in batch.records)
            tables, found = shape_stream(
                self.table(stream),
                stream,
                company_id,
                records,
                synced_at,
                self._existing(pipeline),
            )
            shaped.extend(table for table in tables if table.rows or table is tables[0])
            notes.extend(found)
            landed[stream] = sorted({str(record.id) for record in records})
            held.extend(
                _quarantine_row(company_id, stream, batch.run_id, record, reason, synced_at)
                for batch in group
                for record, reason in batch.quarantined
            )
        if held:
            shaped.append(self._quarantine_table(held))
        if self.sql:
            self._clear_emptied_children(pipeline, shaped)
        resources = [self._resource(table) for table in shaped if table.rows]
        if resources:
            try:
                pipeline.run(resources)
            except Exception as error:
                raise DestinationError(
                    f"loading into the warehouse failed: {_reason(error)}"
                ) from (None)
        if self.sql:
            self._leave_quarantine(pipeline, company_id, landed)
        return notes

    def _resource(self, table: ShapedTable) -> Any:
        pa = self._pa
        columns = {
            name: pa.array([row.get(name) for row in table.rows], type=self._arrow[data_type])
            for name, data_type in table.types.items()
        }
        hints = {
            name: {"data_type": data_type, "nullable": name not in _NOT_NULL}
            for name, data_type in table.types.items()
        }
        if self.sql:
            disposition: Any = {"disposition": "merge", "strategy": "delete-insert"}
            keys: dict[str, Any] = {
                "primary_key": list(table.primary_key),
                "merge_key": list(table.merge_key),
            }
        else:
            disposition, keys = "append", {}
        return self._dlt.resource(
            pa.table(columns),
            name=table.name,
            table_name=table.name,
            write_disposition=disposition,
            columns=hints,
            **keys,
        )

    def _quarantine_table(self, rows: list[dict[str, Any]]) -> ShapedTable:
        key = ("company_id", "stream", "record_id")
        unique = {tuple(row[name] for name in key): row for row in rows}
        return ShapedTable(
            self._prefix + QUARANTINE_TABLE,
            key,
            key,
            rows=list(unique.values()),
            types={
                "company_id": "bigint",
                "stream": "text",
                "record_id": "text",
                "run_id": "text",
                "reason": "text",
                "quarantined_at": "timestamp",
                "record": "text",
            },
        )

    def _clear_emptied_children(self, pipeline: Any, shaped: list[ShapedTable]) -> None:
        """Deletes the child rows of parents whose list is now empty or gone: the merge
        replaces a parent's child rows only when the batch has at least one of them."""
        existing = self._tables(pipeline)
        loading = {table.name: table for table in shaped}
        statements: list[tuple[str, list[Any]]] = []
        for parent in shaped:
            if parent.types.get("data") != "json" or not parent.rows:
                continue
            key = parent.primary_key
            parents = {tuple(row[name] for name in key) for row in parent.rows}
            for name in existing:
                if not name.startswith(parent.name + "__") or name.count("__") < 1:
                    continue
                if "_position" not in existing[name].get("columns", {}):
                    continue
                child = loading.get(name)
                emptied = sorted(parents - (child.parents if child is not None else set()))
                child_key = ("company_id", *(f"_parent_{k}" for k in key[1:]))
                for chunk in _chunks(emptied):
                    statements.append((name, [child_key, chunk]))
        if not statements:
            return
        with pipeline.sql_client() as client, client.begin_transaction():
            for name, (child_key, chunk) in statements:
                table = client.make_qualified_table_name(name)
                condition = " OR ".join(
                    "(" + " AND ".join(f"{column} = %s" for column in child_key) + ")"
                    for _ in chunk
                )
                values = [value for parent_key in chunk for value in parent_key]
                client.execute_sql(f"DELETE FROM {table} WHERE {condition}", *values)  # noqa: S608

    def _leave_quarantine(
        self, pipeline: Any, company_id: int, landed: dict[str, list[str]]
    ) -> None:
        name = self._prefix + QUARANTINE_TABLE
        if name not in self._tables(pipeline) or not any(landed.values()):
            return
        with pipeline.sql_client() as client, client.begin_transaction():
            table = client.make_qualified_table_name(name)
            for stream, ids in landed.items():
                for chunk in _chunks(ids):
                    marks = ", ".join(["%s"] * len(chunk))
                    client.execute_sql(
                        f"DELETE FROM {table} WHERE company_id = %s AND stream = %s "  # noqa: S608
                        f"AND record_id IN ({marks})",
                        company_id,
                        stream,
                        *chunk,
                    )

    def mark_deleted(
        self, stream: str, company_id: int, ids: Sequence[int], deleted_at: datetime
    ) -> int:
        """Sets deleted_at on the rows not deleted yet (SQL) or appends tombstones (files)."""
        pipeline = self.pipeline(company_id)
        now = datetime.now(UTC)
        name = self.table(stream)
        if not self.sql:
            key = key_columns(stream)
            rows = [
                dict(zip(key, (company_id, rid), strict=True))
                | {"deleted_at": deleted_at, "synced_at": now}
                for rid in ids
            ]
            table = ShapedTable(name, key, key, rows=rows)
            table.types = dict.fromkeys(key, "bigint") | {
                "deleted_at": "timestamp",
                "synced_at": "timestamp",
            }
            pipeline.run([self._resource(table)])
            return len(ids)
        if name not in self._tables(pipeline):
            return 0
        marked = 0
        with pipeline.sql_client() as client, client.begin_transaction():
            table_name = client.make_qualified_table_name(name)
            for chunk in _chunks(ids):
                marks = ", ".join(["%s"] * len(chunk))
                where = f"company_id = %s AND id IN ({marks}) AND deleted_at IS NULL"
                rows = client.execute_sql(
                    f"SELECT COUNT(*) FROM {table_name} WHERE {where}",  # noqa: S608
                    company_id,
                    *chunk,
                )
                marked += int(rows[0][0])
                client.execute_sql(
                    f"UPDATE {table_name} SET deleted_at = %s, synced_at = %s "  # noqa: S608
                    f"WHERE {where}",
                    deleted_at,
                    now,
                    company_id,
                    *chunk,
                )
        return marked

    def purge(self, company_id: int, streams: Sequence[str]) -> dict[str, int]:
        """Deletes the company's rows from its streams' tables, child tables and quarantine."""
        if not self.sql:
            return self._purge_files(company_id, streams)
        pipeline = self.pipeline(company_id)
        existing = self._tables(pipeline)
        counts: dict[str, int] = {}
        with pipeline.sql_client() as client, client.begin_transaction():
            for stream in streams:
                name = self.table(stream)
                owned = [name, *(t for t in existing if t.startswith(name + "__"))]
                for table in owned:
                    if table not in existing:
                        continue
                    qualified = client.make_qualified_table_name(table)
                    where = f"FROM {qualified} WHERE company_id = %s"
                    if table == name:
                        rows = client.execute_sql(f"SELECT COUNT(*) {where}", company_id)
                        counts[stream] = int(rows[0][0])
                    client.execute_sql(f"DELETE {where}", company_id)
            quarantine = self._prefix + QUARANTINE_TABLE
            if quarantine in existing:
                qualified = client.make_qualified_table_name(quarantine)
                client.execute_sql(
                    f"DELETE FROM {qualified} WHERE company_id = %s",  # noqa: S608
                    company_id,
                )
        return counts

    def _purge_files(self, company_id: int, streams: Sequence[str]) -> dict[str, int]:
        pipeline = self.pipeline(company_id)
        existing = self._tables(pipeline)
        counts: dict[str, int] = {}
        with pipeline.destination_client() as client:
            fs, root = client.fs_client, client.dataset_path
            names = [self.table(s) for s in streams] + [self._prefix + QUARANTINE_TABLE]
            for name in names:
                for table in [name, *(t for t in existing if t.startswith(name + "__"))]:
                    folder = f"{root}/{table}/{company_id}"
                    if not fs.exists(folder):
                        continue
                    if table == name and name != self._prefix + QUARANTINE_TABLE:
                        counts[name.removeprefix(self._prefix)] = self._count_rows(fs, folder)
                    fs.rm(folder, recursive=True)
        return counts

    def _count_rows(self, fs: Any, folder: str) -> int:
        parquet: Any = importlib.import_module("pyarrow.parquet")
        total = 0
        for path in fs.find(folder):
            if path.endswith(".parquet"):
                with fs.open(path, "rb") as handle:
                    total += int(parquet.ParquetFile(handle).metadata.num_rows)
        return total

    def close(self) -> None:
        """Closes the DuckDB connection and removes the working folder."""
        if self._native is not None:
            self._native.close()
            self._native = None
        self._pipelines.clear()
        shutil.rmtree(self._workdir, ignore_errors=True)


def _quarantine_row(
    company_id: int,
    stream: str,
    run_id: str,
    record: DestinationRecord,
    reason: str,
    when: datetime,
) -> dict[str, Any]:
    return {
        "company_id": company_id,
        "stream": stream,
        "record_id": str(record.id),
        "run_id": run_id,
        "reason": reason[:500],
        "quarantined_at": when,
        "record": quarantine_text(record.data),
    }


def _reason(error: BaseException) -> str:
    """The innermost cause of a dlt failure, on one line, without secrets."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = " ".join(str(error).split())[:300]
    return f"{type(error).__name__}: {scrub_text(text)}"
