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
from app.destinations.warehouse import statements
from app.destinations.warehouse.shaping import ShapedTable, key_columns, shape_stream
from app.destinations.warehouse.targets import WarehouseTarget

PIPELINE_NAME = "procore_connector"
QUARANTINE_TABLE = "connector_quarantine"
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
        # A loaded package's files are of no further use (the data is in the warehouse).
        os.environ.setdefault("LOAD__DELETE_COMPLETED_JOBS", "true")
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
            url = target.credentials
            if self._address is not None:
                # libpq connects to the checked address; the host name still verifies TLS.
                url = f"{url}{'&' if '?' in url else '?'}hostaddr={self._address}"
            config: Any = importlib.import_module("dlt.destinations.impl.postgres.configuration")
            credentials = config.PostgresCredentials()
            credentials.parse_native_representation(url)
            # dlt insists on a password; a server may need none (trust, peer, certificates).
            credentials.password = credentials.password or ""
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
            emptied = statements.emptied_children(self._tables(pipeline), shaped)
            if emptied:
                with pipeline.sql_client() as client, client.begin_transaction():
                    statements.delete_children(client, emptied)
        resources = [self._resource(table) for table in shaped if table.rows]
        if resources:
            try:
                pipeline.run(resources)
            except Exception as error:
                raise DestinationError(
                    f"loading into the warehouse failed: {_reason(error)}"
                ) from (None)
        quarantine = self._prefix + QUARANTINE_TABLE
        if self.sql and quarantine in self._tables(pipeline) and any(landed.values()):
            with pipeline.sql_client() as client, client.begin_transaction():
                statements.leave_quarantine(client, quarantine, company_id, landed)
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
        with pipeline.sql_client() as client, client.begin_transaction():
            return statements.mark_deleted(client, name, company_id, ids, deleted_at, now)

    def purge(self, company_id: int, streams: Sequence[str]) -> dict[str, int]:
        """Deletes the company's rows from its streams' tables, child tables and quarantine."""
        if not self.sql:
            pipeline = self.pipeline(company_id)
            names = {stream: self.table(stream) for stream in streams}
            names[""] = self._prefix + QUARANTINE_TABLE
            with pipeline.destination_client() as client:
                return statements.delete_company_files(
                    client, self._tables(pipeline), names, company_id
                )
        pipeline = self.pipeline(company_id)
        existing = self._tables(pipeline)
        tables = {stream: self.table(stream) for stream in streams}
        quarantine = self._prefix + QUARANTINE_TABLE
        with pipeline.sql_client() as client, client.begin_transaction():
            return statements.delete_company(client, existing, tables, quarantine, company_id)

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
