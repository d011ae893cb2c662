"""Warehouses and lakes through dlt (`dlt+duckdb:`, `dlt+postgres:`, `dlt+snowflake:`,
`dlt+bigquery:`, `dlt+filesystem+s3:`, ...), installed with the `warehouse` extra.

Only `targets` is imported by the URL parser; the rest loads dlt and is imported when a
warehouse destination is created.
"""
